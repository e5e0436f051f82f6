"""Benchmark: time and peak memory of the parsers' hostile inputs (issue 11, "Resource
bounds", parser side): the YAML alias bomb and other oversized agreements, and the extreme
times (a detection in year 0001 through ``sensors locate``, times in year 0001 and 9999
with UTC offsets in every source).

Each case runs in a fresh process that has already imported everything and parsed a valid
input of the same kind; the figures are for the hostile call alone: wall time, and the
peak resident memory it added (Linux VmHWM after resetting it through
/proc/self/clear_refs, minus the resident memory before the call; it counts polars' and
GEOS's native allocations, which tracemalloc does not). ``sensors locate`` is also run as
the command itself, whose whole process is reported (interpreter and imports included).

    .venv/bin/python benchmarks/resource_bounds_parsers.py [--cases a,b,...]

Goal: each input refused or handled within 1 s and 100 MB.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EXTREME = ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
           "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59.999999Z"]
TIME_S, MEMORY_MB = 1.0, 100.0


def alias_bomb() -> bytes:
    """About 400 bytes that expand to 9^9 (387 million) values: a valid agreement but for
    the name, which is the bomb (building the name's text is what once took 2.3 GB)."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for k in range(1, 9):
        p, c = chr(96 + k), chr(97 + k)
        levels.append(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]")
    return ("\n".join(levels) + "\nformat: trucewatch-agreement\nid: t\nname: *i\n"
            "entry_into_force: 2026-04-20T00:00:00Z\nline_of_contact: {geojson: {type: "
            "LineString, coordinates: [[37.0, 47.5], [37.5, 48.5]]}}\nsides: [{id: left, "
            "buffer_km: 10}, {id: right, buffer_km: 10}]\n").encode()


VALID_AGREEMENT = (b"format: trucewatch-agreement\nid: t\nentry_into_force: "
                   b"2026-04-20T00:00:00Z\nline_of_contact: {geojson: {type: LineString, "
                   b"coordinates: [[37.0, 47.5], [37.5, 48.5]]}}\nsides: [{id: left, buffer_km:"
                   b" 10}, {id: right, buffer_km: 10}]\nwithdrawal_km: {artillery: 30}\n")


# ------------------------------------------------------------------ the cases
def _agreement(data: bytes, work: Path) -> Callable[[], str]:
    from trucewatch.agreement.loader import check_agreement

    path = work / "hostile.yaml"
    path.write_bytes(data)
    ok = work / "ok.yaml"
    ok.write_bytes(VALID_AGREEMENT)
    check_agreement(ok)

    def run() -> str:
        report = check_agreement(path)
        return ("refused: " + report.errors[0][:150]) if report.errors else "accepted"
    return run


def _stations(work: Path) -> Any:
    from trucewatch.ingest.sensors import read_stations

    return read_stations(work / "sc" / "stations.csv")


def _locate(work: Path, detections: Path) -> Callable[[], str]:
    from trucewatch.ingest.sensors import read_detections
    from trucewatch.sensors.association import ExplosionAssociator
    from trucewatch.sensors.events import locate_files

    stations = _stations(work)
    locate_files(stations, read_detections(work / "sc" / "detections.csv", stations),
                 ExplosionAssociator())

    def run() -> str:
        batch = read_detections(detections, stations)
        res = locate_files(stations, batch, ExplosionAssociator())
        return (f"{batch.records.height} valid, {len(batch.quarantine)} quarantined "
                f"({batch.quarantine[0].reason if batch.quarantine else ''}); "
                f"{res.association.events.height} events")
    return run


def _quarantined(parse: Callable[[], Any]) -> Callable[[], str]:
    def run() -> str:
        b = parse()
        reasons = sorted({re.sub(r"[+-]?\d{4}-\d\d-\d\dT\S*", "T", q.reason).split(" (")[0]
                          for q in b.quarantine})
        return f"{b.records.height} valid, {len(b.quarantine)} quarantined: {'; '.join(reasons)}"
    return run


def case(name: str, work: Path) -> Callable[[], str]:
    """A prepared case: every import and warm-up done, the hostile call returned."""
    if name == "alias_bomb":
        return _agreement(alias_bomb(), work)
    if name == "agreement_5mib":
        return _agreement(b"format: trucewatch-agreement\n#" + b"x" * (5 * 2**20), work)
    if name == "agreement_nested_100k":
        return _agreement(b"format: trucewatch-agreement\nname: " + b"[" * 100_000
                          + b"]" * 100_000, work)
    if name == "agreement_eif_year_0001_offset":
        return _agreement(VALID_AGREEMENT.replace(b"2026-04-20T00:00:00Z",
                                                  b"0001-01-01T00:00:00+01:00"), work)
    if name == "agreement_eif_year_9999_offset":
        return _agreement(VALID_AGREEMENT.replace(b"2026-04-20T00:00:00Z",
                                                  b"9999-12-31T23:00:00-05:00"), work)
    if name == "detection_year_0001_locate":
        return _locate(work, work / "year0001.csv")
    if name == "associator_gap_36_years":
        # past the parser: one detection 36 years before the rest, straight to the associator
        import polars as pl

        from trucewatch.ingest.sensors import read_detections
        from trucewatch.sensors.association import ExplosionAssociator, Network, Picks

        st = _stations(work)
        det = read_detections(work / "sc" / "detections.csv", st).records
        net = Network.from_table(st)
        lone = det.head(1).with_columns(pl.lit("lone").alias("detection_id"),
                                        pl.col("time") - pl.duration(days=36 * 365))
        assoc = ExplosionAssociator()
        assoc.associate(net, Picks.from_table(det, net))

        def gap() -> str:
            res = assoc.associate(net, Picks.from_table(pl.concat([lone, det]), net))
            return f"{res.events.height} events, {res.assignments.height} detections assigned"
        return gap
    if name == "detections_extreme_offsets":
        from trucewatch.ingest.sensors import parse_detections

        st = _stations(work)
        raw = ("detection_id,station,time,phase\n" + "".join(
            f"x{k},{st['id'][0]},{t},acoustic\n" for k, t in enumerate(EXTREME))).encode()
        parse_detections(raw.replace(b"0001-", b"2026-").replace(b"9999-", b"2026-"),
                         "d.csv", st, now=NOW)
        return _quarantined(lambda: parse_detections(raw, "d.csv", st, now=NOW))
    if name == "drones_extreme_offsets":
        from trucewatch.ingest.drones import DroneSource

        src = DroneSource()
        doc = {"format": "trucewatch-drone/1", "reports": [
            {"report_id": f"r{k}", "platform_id": "P", "time": t,
             "platform": {"lat": 48.0, "lon": 37.5}, "class": "explosion", "confidence": 0.8,
             "target": {"lat": 48.01, "lon": 37.52, "error_m": 25}}
            for k, t in enumerate(EXTREME)]}
        raw = json.dumps(doc).encode()
        src.parse(raw.replace(b"0001-", b"2026-").replace(b"9999-", b"2026-"), "d.json",
                  now=NOW)
        return _quarantined(lambda: src.parse(raw, "d.json", now=NOW))
    if name == "allegations_extreme_offsets":
        from trucewatch.ingest.allegations import AllegationSource
        from trucewatch.ingest.extraction import Extractor

        alleg = AllegationSource(Extractor(use_spacy=False))
        items = [{"allegation_id": f"{w}{k}", "claimant": "x", "claimant_kind": "party",
                  "received_at": "2026-05-31T09:00:00Z", "lat": 48.0, "lon": 37.8,
                  "time_start": "2026-05-30T04:00:00Z", w: t}
                 for k, t in enumerate(EXTREME) for w in ("received_at", "time_start",
                                                          "time_end")]
        raw = json.dumps({"format": "trucewatch-allegations/1", "allegations": items}).encode()
        alleg.parse(raw.replace(b"0001-", b"2026-").replace(b"9999-", b"2026-"), "a.json",
                    now=NOW)
        return _quarantined(lambda: alleg.parse(raw, "a.json", now=NOW))
    if name == "firms_extreme_dates":
        from trucewatch.ingest.firms import parse_firms

        raw = b"latitude,longitude,acq_date,sensor_guess\n" + b"".join(
            b"48.1,37.1,%s,MODIS\n" % d for d in (b"0001-01-01", b"9999-12-31") * 1000)
        parse_firms(b"latitude,longitude,acq_date,sensor_guess\n48.1,37.1,2021-07-01,MODIS\n",
                    "f.csv", today=NOW)
        return _quarantined(lambda: parse_firms(raw, "f.csv", today=NOW))
    if name == "envelope_year_9999_offset":
        from trucewatch.errors import TrucewatchError
        from trucewatch.integrity.envelope import open_envelope

        env = json.dumps({"format": "trucewatch-signed/1", "key_id": "k", "nonce": "n",
                          "signed_at": "9999-12-31T23:00:00-05:00", "payload": "e30=",
                          "payload_sha256": "0" * 64, "signature": "AAAA"}).encode()

        def run() -> str:
            try:
                open_envelope(env)
            except TrucewatchError as err:
                return "refused: " + err.message[:120]
            return "accepted"
        return run
    raise SystemExit(f"unknown case {name}")


CASES = ["alias_bomb", "agreement_5mib", "agreement_nested_100k",
         "agreement_eif_year_0001_offset", "agreement_eif_year_9999_offset",
         "detection_year_0001_locate", "associator_gap_36_years", "detections_extreme_offsets",
         "drones_extreme_offsets",
         "allegations_extreme_offsets", "firms_extreme_dates", "envelope_year_9999_offset"]


# ------------------------------------------------------------------ measuring
def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(name: str, work: Path) -> None:
    run = case(name, work)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    rss0 = _status("VmRSS")
    t0 = time.perf_counter()
    outcome = run()
    wall = time.perf_counter() - t0
    peak = max(_status("VmHWM"), _status("VmRSS")) - rss0
    print(json.dumps({"case": name, "wall_s": wall, "peak_mb": peak / 2**20,
                      "outcome": outcome}))


def prepare(work: Path) -> None:
    """A 2-hour quiet sensor scenario, and its detections with one row in year 0001."""
    sc = work / "sc"
    if not (sc / "detections.csv").exists():
        subprocess.run([sys.executable, "-m", "trucewatch", "sensors", "simulate", str(sc),
                        "--preset", "quiet", "--hours", "2", "--seed", "3"], check=True,
                       capture_output=True)
    lines = (sc / "detections.csv").read_text().splitlines()
    row = lines[1].split(",")
    row[0], row[2] = "ancient", "0001-01-01T00:00:00Z"
    (work / "year0001.csv").write_text("\n".join([lines[0], ",".join(row), *lines[1:]]) + "\n")


def cli_locate(work: Path) -> dict[str, Any]:
    """``trucewatch sensors locate`` on the file with the year-0001 row: the whole command."""
    # a small wrapper runs the command as its only child, so its peak RSS is the command's
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120); "
               "print((r.stdout + r.stderr).strip().splitlines()[-1][:150]); "
               "print(time.perf_counter() - t, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "trucewatch", "sensors",
         "locate", str(work / "sc" / "stations.csv"), str(work / "year0001.csv"), "--out",
         str(work / "ev.csv"), "--assignments", str(work / "as.csv")],
        capture_output=True, text=True, timeout=180)
    last, figures = proc.stdout.strip().splitlines()[-2:]
    wall, rss_kb, rc = figures.split()
    return {"case": "sensors_locate_cli_year_0001 (whole process)", "wall_s": float(wall),
            "peak_mb": int(rss_kb) / 1024, "outcome": f"exit {rc}: {last}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--child", default="")
    ap.add_argument("--work", default="")
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.work))
        return
    with tempfile.TemporaryDirectory(prefix="tw-bounds-") as tmp:
        work = Path(tmp)
        prepare(work)
        rows = []
        for name in args.cases.split(","):
            proc = subprocess.run([sys.executable, __file__, "--child", name, "--work",
                                   str(work)], capture_output=True, text=True, timeout=300)
            if proc.returncode:
                rows.append({"case": name, "wall_s": float("nan"), "peak_mb": float("nan"),
                             "outcome": "CRASH " + proc.stderr.strip().splitlines()[-1][:150]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        rows.append(cli_locate(work))
    print(f"# Resource bounds, parser side (goal: each within {TIME_S:g} s and "
          f"{MEMORY_MB:g} MB)\n")
    print("| input | time s | peak MB added | within goal | outcome |")
    print("|---|---|---|---|---|")
    met = True
    for r in rows:
        whole = "whole process" in r["case"]
        ok = r["wall_s"] <= TIME_S and (whole or r["peak_mb"] <= MEMORY_MB)
        met &= ok or whole
        outcome = " ".join(str(r["outcome"]).split()).replace("|", "/")
        print(f"| {r['case']} | {r['wall_s']:.3f} | {r['peak_mb']:.1f} | "
              f"{'yes' if ok else ('n/a' if whole else 'NO')} | {outcome} |")
    print(f"\nGoal: {'MET' if met else 'NOT MET'} (the whole `sensors locate` process includes "
          "the interpreter, polars and ObsPy imports; its time and size are for reference)")


if __name__ == "__main__":
    main()
