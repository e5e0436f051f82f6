"""Tamper trials (issue 11): each kind of edit a store's holder can make, on a fresh copy
of a store built by the built-in cycle; does `trucewatch verify` catch it, and what is
the first problem it names?

    .venv/bin/python benchmarks/tamper_trials.py [--ingest FIRMS.csv[.gz] [--repeat 2]]

The store: the built-in scenario's cycle (FIRMS, located explosions, signed drone
reports, allegations and rulings, refusals, quarantine, the scripted review, bulletins),
then two API tokens made and one revoked, and a signed checkpoint. Each trial copies the
store file, edits it with raw SQL (triggers dropped: the holder owns the file), and runs
``trucewatch verify --store S [--checkpoint C.json]`` as a subprocess: caught = exit
status != 0, "names" = the first problem line names the expected table and key. The
clean store is run first (a false alarm fails the benchmark).

``--ingest FILE``: also time storing that FIRMS file (e.g. the 1.17 M-row
../shared/data/firms-ukraine-2000-2022/firms_ukraine_2000_2022.csv.gz) into a fresh store
with its rows bound into the log, against the same ingest with the binding switched off
(the batch indexes dropped, nothing read back), and time `verify` on that store.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIGGERS = ("audit_log_append_only_u", "audit_log_append_only_d", "raw_inputs_evidentiary_u",
            "raw_inputs_evidentiary_d")


def build(root: Path) -> tuple[Path, Path | None, Path]:
    """The built store, its checkpoint (None if this trucewatch writes none) and an older
    copy of the store (before the tokens), for the rollback."""
    from trucewatch.demo import generate
    from trucewatch.demo.multisource import apply_review
    from trucewatch.pipeline import FieldInputs, SensorInputs, run_cycle
    from trucewatch.storage import open_store

    sc = generate(root / "scenario")
    out = root / "out"
    assert sc.stations and sc.detections
    run_cycle(agreement_path=sc.agreement, firms_files=[*sc.reference, *sc.current],
              reference_years=[2023, 2024, 2025], out_dir=out, cloud_path=sc.coverage,
              pdf=False, sensors=SensorInputs(sc.stations, [sc.detections]),
              field_inputs=FieldInputs(sc.drones, sc.allegations, sc.keys),
              review=apply_review)
    store = out / "trucewatch.db"
    older = root / "older.db"
    shutil.copy(store, older)
    s = open_store(store)
    s.add_token("liaison-a", "liaison", party="A")
    s.add_token("sensor-net", "sensor")
    s.revoke_token("sensor-net")
    checkpoint = None
    if hasattr(s, "publish_checkpoint"):
        day = sorted(out.glob("bulletin-*-public.json"))[-1].name.split("-", 1)[1][:10]
        from datetime import date

        checkpoint = s.publish_checkpoint(out, date.fromisoformat(day))
    s.close()
    return store, checkpoint, older


def sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for t in TRIGGERS:
        db.execute(f"DROP TRIGGER IF EXISTS {t}")
    for s in statements:
        db.execute(s)
    db.commit()
    db.close()


def one(path: Path, query: str) -> object:
    db = sqlite3.connect(path)
    row = db.execute(query).fetchone()
    db.close()
    return row[0] if row else None


def replay(path: Path) -> None:
    """Append an old entry again at the end, re-chained (the chain has no secret)."""
    from trucewatch.integrity.chain import entry_hash

    db = sqlite3.connect(path)
    cols = "seq, at, actor, action, subject, details, prev_hash"
    old = db.execute(f"SELECT {cols} FROM audit_log WHERE action = 'rule_allegations' "
                     "ORDER BY seq LIMIT 1").fetchone()
    seq, head = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                           ).fetchone()
    body = dict(zip(cols.split(", "), old, strict=True)) | {"seq": seq + 1, "prev_hash": head}
    db.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?)",
               (*body.values(), entry_hash(body)))
    db.commit()
    db.close()


def restore(older: Path, path: Path) -> None:
    shutil.copy(older, path)


Trial = tuple[str, Callable[[Path], None], tuple[str, ...], bool]


def trials(older: Path) -> list[Trial]:
    """(name, edit, what the first problem should name, whether the checkpoint is given):
    the six findings are run as the hostile tester ran them, without a checkpoint."""
    return [
        ("every incident forged to verified, a violation's text rewritten",
         lambda p: sql(p, "UPDATE incidents SET status = 'verified'",
                       "UPDATE violations SET doc = replace(doc, 'a', 'o') WHERE id = "
                       "(SELECT min(id) FROM violations)"),
         ("incidents row inc-", "violations row "), False),
        ("sensor locations (located explosions) moved 5 km",
         lambda p: sql(p, "UPDATE observations SET lat = lat + 0.045 WHERE source_kind = "
                          "'sensor_network'"), ("observations row o-",), False),
        ("a ruling changed",
         lambda p: sql(p, "UPDATE rulings SET ruling = 'no_violation' WHERE allegation_id = "
                          "(SELECT min(allegation_id) FROM rulings WHERE ruling != "
                          "'no_violation')"), ("rulings row ",), False),
        ("quarantine, refusals and nonces emptied",
         lambda p: sql(p, "DELETE FROM quarantine", "DELETE FROM refused",
                       "DELETE FROM submissions"),
         ("quarantine row ", "refused row ", "submissions row "), False),
        ("every evidentiary copy deleted",
         lambda p: sql(p, "DELETE FROM raw_inputs"), ("evidentiary copy ",), False),
        ("the last audit entry deleted",
         lambda p: sql(p, "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM "
                          "audit_log)"), ("api_tokens row ",), False),
        ("the last audit entry deleted, checked against the checkpoint",
         lambda p: sql(p, "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM "
                          "audit_log)"), ("log truncated behind checkpoint",), True),
        ("an old entry replayed at the end (re-chained)", replay, ("entry ",), False),
        ("rollback behind a checkpoint (an older copy restored)",
         lambda p: restore(older, p), ("log truncated behind checkpoint",), True),
    ]


def verify(store: Path, checkpoint: Path | None) -> tuple[int, str, float]:
    cmd = [sys.executable, "-m", "trucewatch", "verify", "--store", str(store)]
    if checkpoint is not None:
        cmd += ["--checkpoint", str(checkpoint)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    dt = time.perf_counter() - t
    lines = (r.stderr or r.stdout).strip().splitlines()
    return r.returncode, (lines[0] if lines else "").removeprefix("problem: "), dt


def ingest_timing(firms: Path, tmp: Path, repeat: int) -> None:
    from trucewatch.ingest.firms import read_firms
    from trucewatch.storage import SqliteStore, binding

    batch = read_firms(firms)
    print(f"\ningest of {firms.name}: {batch.n_rows:,} rows, {repeat} time(s) each way, "
          "alternating; the fastest of each is kept")
    times: dict[str, list[float]] = {"unbound": [], "bound": []}
    saved = binding.Pending.details
    for k in range(repeat):
        for mode in ("unbound", "bound"):
            store = SqliteStore(tmp / f"{mode}-{k}.db")
            if mode == "unbound":  # as before: no batch index, nothing read back
                for ix in ("observations_batch", "quarantine_batch", "allegations_batch"):
                    store.db.execute(f"DROP INDEX {ix}")
                binding.Pending.details = lambda self, db: {}  # type: ignore[method-assign]
            t = time.perf_counter()
            store.ingest(batch)
            times[mode].append(time.perf_counter() - t)
            binding.Pending.details = saved  # type: ignore[method-assign]
            if mode == "bound" and k == repeat - 1:
                t = time.perf_counter()
                problems = store.verify()
                print(f"verify of the bound store: {time.perf_counter() - t:.1f} s, "
                      f"{len(problems)} problems")
            store.close()
            (tmp / f"{mode}-{k}.db").unlink()
    u, b = min(times["unbound"]), min(times["bound"])
    print(f"ingest unbound {u:.1f} s, bound {b:.1f} s: +{100 * (b / u - 1):.0f} % "
          f"(all: unbound {', '.join(f'{x:.1f}' for x in times['unbound'])}; bound "
          f"{', '.join(f'{x:.1f}' for x in times['bound'])})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingest", type=Path, help="also time ingesting this FIRMS file")
    ap.add_argument("--repeat", type=int, default=2, help="ingest timings each way")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store, checkpoint, older = build(tmp)
        print(f"store: {store.stat().st_size / 1e6:.1f} MB, "
              f"{one(store, 'SELECT count(*) FROM audit_log')} log entries, "
              f"{one(store, 'SELECT count(*) FROM observations')} observations; checkpoint: "
              f"{'yes' if checkpoint else 'none (this trucewatch writes none)'}")
        rc, line, dt = verify(store, checkpoint)
        print(f"clean store: exit {rc} in {dt:.2f} s: {line}")
        if rc != 0:
            sys.exit("false alarm on the clean store")
        print("\n| edit | checkpoint | caught | names the bad row | verify s | first problem |")
        print("|---|---|---|---|---|---|")
        caught = named = 0
        results = []
        for k, (name, edit, expect, with_checkpoint) in enumerate(trials(older)):
            copy = tmp / f"trial-{k}.db"
            shutil.copy(store, copy)
            edit(copy)
            rc, line, dt = verify(copy, checkpoint if with_checkpoint else None)
            ok, names = rc != 0, rc != 0 and line.startswith(expect)
            caught += ok
            named += names
            results.append({"edit": name, "caught": ok, "named": names, "seconds": dt,
                            "first_problem": line})
            shown = line if len(line) <= 150 else line[:147] + "..."
            given = "given" if with_checkpoint and checkpoint else "-"
            print(f"| {name} | {given} | {'yes' if ok else 'NO'} | {'yes' if names else 'no'} | "
                  f"{dt:.2f} | {shown.replace('|', '/')} |")
        print(f"\ncaught {caught} of {len(results)}, first bad row named in {named}")
        (tmp / "results.json").write_text(json.dumps(results, indent=2))
        if a.ingest:
            ingest_timing(a.ingest, tmp, a.repeat)


if __name__ == "__main__":
    main()
