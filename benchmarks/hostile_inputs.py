"""Hostile-input suite, the larger run (issue 11): schemathesis against the running
service (positive and negative data, every operation, as an admin and as a party's
liaison) over the built-in cycle's store, and the hypothesis properties of the API's
models and routes with many examples.

    .venv/bin/python benchmarks/hostile_inputs.py [--examples 100] [--hypothesis 1000]

Reports the inputs tried, the failures, the server errors (5xx) and tracebacks in the
server's log, and whether every refused submission (a POST to ``/allegations`` or
``/ingest/{source}`` answered 4xx other than 401, 403, 404 or 405) is on the record (a
refusal, or the quarantine for an allegation stored whole in quarantine).
Goal: 0 server errors, 0 tracebacks, every refusal recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lab.server import Server, free_port  # noqa: E402
from test_schemathesis import tried  # noqa: E402
from trucewatch.demo import ScenarioFiles  # noqa: E402
from trucewatch.storage import SqliteStore  # noqa: E402

SUBMISSION = re.compile(r"/api/v1/(allegations|ingest/(firms|drone|allegations|stations|"
                        r"detections))$")
NOT_A_SUBMISSION = {401, 403, 404, 405}


def build(folder: Path) -> tuple[Path, ScenarioFiles]:
    from lab.cycle import builtin_cycle
    from trucewatch.demo import generate

    scenario = generate(folder / "scenario")
    out = folder / "cycle"
    builtin_cycle(scenario, out)
    return out, scenario


def interactions(report: Path) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request schemathesis sent."""
    out = []
    for line in report.read_text().splitlines():
        event = json.loads(line)
        done = event.get("ScenarioFinished")
        if not done:
            continue
        for it in (done.get("recorder") or {}).get("interactions", {}).values():
            req, resp = it.get("request") or {}, it.get("response") or {}
            if resp:
                path = "/" + req["uri"].split("://", 1)[1].split("/", 1)[1].split("?")[0]
                out.append((req["method"], path, int(resp["status_code"])))
    return out


def recorded(db: Path) -> int:
    """Refusals and whole-quarantined allegation batches received through the API."""
    con = sqlite3.connect(db)
    try:
        refused = con.execute("SELECT count(*) FROM refused WHERE name LIKE 'api-%'"
                              ).fetchone()[0]
        quarantined = con.execute(
            "SELECT count(DISTINCT b.id) FROM batches b JOIN quarantine q ON q.batch_id = "
            "b.id WHERE b.name LIKE 'api-allegation-%'").fetchone()[0]
    finally:
        con.close()
    return int(refused) + int(quarantined)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=100, help="schemathesis, per operation")
    ap.add_argument("--hypothesis", type=int, default=1000, help="hypothesis, per property")
    args = ap.parse_args()
    from test_schemathesis import run_schemathesis

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out, scenario = build(folder)
        for role in ("admin", "liaison"):
            db = folder / f"{role}.db"
            db.write_bytes((out / "trucewatch.db").read_bytes())
            store = SqliteStore(db)
            token = store.add_token(f"st-{role}", role,
                                    "Side B liaison office" if role == "liaison" else None)
            store.close()
            srv = Server(db, free_port(), folder=folder, extra=(
                "--agreement", str(scenario.agreement), "--bulletins", str(out),
                "--keys", str(scenario.keys))).start()
            report = folder / f"{role}.ndjson"
            try:
                proc = run_schemathesis(srv.url, token, args.examples, folder)
                before = recorded(db)
                ndjson = run_ndjson(srv.url, token, max(3, args.examples // 10), folder,
                                    report)
            finally:
                srv.stop()
            log = srv.log.read_text(errors="replace")
            generated, failed = tried(proc.stdout)
            seen = interactions(report)
            statuses = Counter(s for _, _, s in seen)
            refusals = sum(1 for m, p, s in seen if m == "POST" and SUBMISSION.search(p)
                           and 400 <= s < 500 and s not in NOT_A_SUBMISSION)
            kept = recorded(db) - before
            rows.append({"run": f"schemathesis as {role}", "inputs": generated,
                         "failures": failed, "rc": proc.returncode,
                         "5xx": sum(n for s, n in statuses.items() if s >= 500) +
                         (0 if "not_a_server_error" not in proc.stdout.split("SUMMARY")[-1]
                          else 1),
                         "tracebacks": log.count("Traceback"),
                         "refusals": f"{refusals} answered, {kept} recorded "
                                     f"(recorded run: {ndjson} inputs)"})
        env = os.environ | {"TRUCEWATCH_HYPOTHESIS_EXAMPLES": str(args.hypothesis)}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(ROOT / "tests" / "test_api_properties.py")],
                              capture_output=True, text=True, cwd=ROOT, env=env)
        m = re.search(r"(\d+) passed", proc.stdout)
        f = re.search(r"(\d+) failed", proc.stdout)
        n = args.hypothesis
        rows.append({"run": "hypothesis (4 properties)",
                     "inputs": 3 * n + 3 * n,  # models: 3n; routes: n each of 3
                     "failures": int(f.group(1)) if f else 0, "rc": proc.returncode,
                     "5xx": 0 if proc.returncode == 0 else "see failures",
                     "tracebacks": 0 if proc.returncode == 0 else "see failures",
                     "refusals": "each checked (allegations)" + (
                         f", {m.group(1)} properties passed" if m else "")})
        if proc.returncode:
            print(proc.stdout[-4000:])
    print("| run | inputs tried | failures | server errors | tracebacks in log | refusals |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['inputs']:,} | {r['failures']} | {r['5xx']} | "
              f"{r['tracebacks']} | {r['refusals']} |")


def run_ndjson(url: str, token: str, examples: int, folder: Path, report: Path) -> int:
    """A recorded run (every request and answer) to check the refusals against."""
    st = Path(sys.executable).with_name("st")
    proc = subprocess.run(
        [str(st), "run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--mode", "all", "--max-examples", str(examples), "--workers", "1",
         "--seed", "7", "--request-timeout", "60", "--phases", "fuzzing",
         "--exclude-checks", "positive_data_acceptance", "--report", "ndjson",
         "--report-ndjson-path", str(report)], capture_output=True, text=True, cwd=folder)
    return tried(proc.stdout)[0]


if __name__ == "__main__":
    main()
