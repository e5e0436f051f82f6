"""Replay real Donbas ceasefires through `trucewatch run`; count what the satellite channel accuses.

Run:  .venv/bin/python benchmarks/ceasefire_replay.py   (project root; needs ../shared/data and
      ../shared/tools/ceasefire-replay)        options: --quick (first and last report date only)

The agreement and the inputs are built exactly as ../shared/tools/ceasefire-replay/replay.py
builds them (its AGREEMENT text, with the YAML ``name:`` quoted): the VIIRS_6dec rows of the
reference years 2012, 2013, 2016, 2018, 2019 plus the current year cut at the report date (nothing
from after it), one ``trucewatch run`` (subprocess) per report date. Counted, as replay.py counts:
features of incidents-*-restricted.geojson with a non-empty ``rule``, ``time_start`` between the
date of entry into force and the report date, all sources satellite (satellite-only candidate
violations), and how many lie beyond the 15 km buffer.

Cases: the 27 July 2020 Donbas ceasefire (entry into force 2020-07-26T21:01Z), weekly reports
2020-08-02 .. 08-31; the 2021 placebo (same dates, no ceasefire); and every other window of
ceasefire_windows.csv that the FIRMS file (VIIRS S-NPP archive 2012-2022, missing 2014, 2015,
2017) can replay where the ORDLO line of contact applies (2015 - 2022-02-23): there the reference
years are only those before the window's year (nothing from after the report date).

Goal (issue 10): <= 10 satellite-only candidate violations in the five weeks of 2020, none beyond
the buffer zone, day 1 (2020-07-26/27) judged.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TOOL = ROOT.parent / "shared" / "tools" / "ceasefire-replay" / "replay.py"
FIRMS = DATA / "firms-ukraine-2000-2022" / "firms_ukraine_2000_2022.csv.gz"
WINDOWS = DATA / "ceasefire-windows" / "ceasefire_windows.csv"
OSCE = DATA / "ceasefire-windows" / "osce_smm_2020_ceasefire_counts.csv"
TRUCEWATCH = ROOT / ".venv" / "bin" / "trucewatch"
SENSOR = "VIIRS_6dec"
BUFFER_KM = 15
GOAL_N = 10
REPORTS_2020 = ["2020-08-02", "2020-08-09", "2020-08-16", "2020-08-23", "2020-08-31"]
DATA_YEARS = {2012, 2013, 2016, 2018, 2019, 2020, 2021, 2022}  # years with VIIRS_6dec rows
ORDLO_FROM, ORDLO_TO = date(2015, 2, 15), date(2022, 2, 23)


def load_tool():  # replay.py is a measuring stick outside the project: import its text
    spec = importlib.util.spec_from_file_location("ceasefire_replay_tool", TOOL)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_rows() -> tuple[list[str], dict[str, list[list[str]]]]:
    """VIIRS_6dec rows of the FIRMS file by year (read once, written per run)."""
    by_year: dict[str, list[list[str]]] = {}
    with gzip.open(FIRMS, "rt") as f:
        r = csv.reader(f)
        header = next(r)
        for row in r:
            if row[3] == SENSOR:
                by_year.setdefault(row[2][:4], []).append(row)
    return header, by_year


def run_one(tool, header, rows, ref_years: list[str], year: str, t0: str, report: str,
            name: str, ident: str) -> tuple[list[dict], list[dict], float, dict]:
    """One ``trucewatch run`` cut at ``report``: (satellite-only candidates, all incidents,
    seconds, the restricted bulletin's coverage section)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "agreement.yaml").write_text(tool.AGREEMENT.format(
            id=ident, name=json.dumps(name), t0=t0, here=tool.HERE, data=tool.DATA))
        with (d / "firms.csv").open("w", newline="") as out:
            w = csv.writer(out)
            w.writerow(header)
            for y in ref_years:
                w.writerows(rows.get(y, []))
            w.writerows(r for r in rows.get(year, []) if r[2] <= report)
        t = time.perf_counter()
        p = subprocess.run([str(TRUCEWATCH), "run", "--agreement", str(d / "agreement.yaml"),
                            "--firms", str(d / "firms.csv"), "--years", ",".join(ref_years),
                            "--report-date", report, "--out", str(d / "out"), "--no-pdf"],
                           capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t
        if p.returncode != 0:
            sys.exit(f"trucewatch run failed ({ident}, {report}): "
                     f"{(p.stderr or p.stdout).strip().splitlines()[-3:]}")
        files = sorted((d / "out").glob("incidents-*-restricted.geojson"))
        feats = json.loads(files[-1].read_text())["features"] if files else []
        bull = sorted((d / "out").glob("bulletin-*-restricted.json"))
        doc = json.loads(bull[-1].read_text()) if bull else {}
        coverage = doc.get("coverage") or {}
        coverage["_classes_by_day"] = (doc.get("as_of") or {}).get("fire_classes_by_day") or {}
    cands, every = [], []
    for f in feats:  # exactly as replay.py counts
        p = dict(f.get("properties") or {})
        p.update({k: v for k, v in (p.get("attributes") or {}).items() if not p.get(k)})
        every.append(p)
        srcs = p.get("sources") or [p.get("source", "")]
        if (p.get("rule") and t0[:10] <= str(p.get("time_start", ""))[:10] <= report
                and all("satellite" in str(s) for s in srcs)):
            cands.append(p)
    return cands, every, dt, coverage


def beyond(c: list[dict]) -> int:
    return sum(1 for p in c if (p.get("distance_to_line_km") or 0) > BUFFER_KM)


def day(p: dict) -> str:
    return str(p.get("time_start", ""))[:10]


def replay_case(tool, header, rows, label, ref_years, year, t0, reports, name, ident):
    """Weekly reports of one case; prints its table, returns per-report results."""
    print(f"\n## {label}: entry into force {t0}, reference years {','.join(ref_years)}\n")
    print("| report date | satellite-only candidates since entry into force | beyond "
          f"{BUFFER_KM} km | incidents in bulletin | rules | run time |")
    print("|---|---|---|---|---|---|")
    results = []
    for rep in reports:
        c, every, dt, cov = run_one(tool, header, rows, ref_years, year, t0, rep, name, ident)
        rules = Counter(str(p.get("rule")) for p in c)
        print(f"| {rep} | {len(c)} | {beyond(c)} | {len(every)} | "
              f"{', '.join(f'{k} {n}' for k, n in rules.most_common()) or '-'} | {dt:.0f} s |")
        results.append((rep, c, every, cov))
    return results


def day_one(results, rows, days: list[str], label: str) -> tuple[bool, str]:
    """How day 1 was judged in the first report: (covered with data and every day-1 incident
    carries a rule or a flag, a summary)."""
    rep, _, every, cov = results[0]
    n_in = Counter(r[2] for r in rows.get(days[0][:4], []) if r[2] in days)
    gaps = {str(x) for x in cov.get("days_without_data") or []}
    quiet = {str(x) for x in cov.get("days_without_detections") or []}
    judged = True
    print(f"\n{label}: day 1 ({' / '.join(days)}) in the first report ({rep}):")
    for d in days:
        state = ("no data" if d in gaps else "no detections" if d in quiet
                 else "observed" if cov else "coverage unknown")
        judged &= d not in gaps and bool(cov) and str(cov.get("start", "")) <= d
        print(f"- {d}: {n_in.get(d, 0)} {SENSOR} detection(s) in the input; coverage: {state}")
    on = [p for p in every if day(p) in days]
    judged &= all(p.get("rule") or p.get("flag") for p in on)
    what = Counter(str(p.get("rule") or p.get("flag") or "neither") for p in on)
    summary = (f"{len(on)} day-1 incident(s) listed"
               + (": " + ", ".join(f"{k} {n}" for k, n in what.most_common()) if on else ""))
    by_day = cov.get("_classes_by_day") or {}
    for d in days:
        classes = by_day.get(d, {})
        print(f"- {d}: classes of its detections: "
              + (", ".join(f"{k} {n}" for k, n in sorted(classes.items())) or "none listed"))
    print(f"- incidents on day 1: {len(on)} (date-only rows: seen within the UTC day's "
          "overpasses; a fire of the day of entry into force straddles it and is flagged "
          "same_day_ambiguous where it would otherwise be a candidate)")
    for p in on:
        print(f"  - {day(p)} rule={p.get('rule') or '-'} flag={p.get('flag') or '-'} "
              f"status={p.get('status')} {p.get('distance_to_line_km')} km: "
              f"{str(p.get('reason', ''))[:160]}")
    if len(results) > 1:
        last_rep, _, last_every, _ = results[-1]
        n_last = sum(1 for p in last_every if day(p) in days)
        print(f"- in the last report ({last_rep}): {n_last} incident(s) on day 1"
              + (" (changed after the fact)" if n_last != len(on) else ""))
    return judged, summary


def osce_daily() -> dict[str, int]:
    out: dict[str, int] = {}
    if not OSCE.exists():
        return out
    with OSCE.open() as f:
        for r in csv.DictReader(f):
            if r["donetsk_region_violations"] or r["luhansk_region_violations"]:
                out[r["period_end_local"][:10]] = (int(r["donetsk_region_violations"] or 0)
                                                   + int(r["luhansk_region_violations"] or 0))
    return out


def per_day(case, placebo, start: date, end: date) -> None:
    """Candidates per day: as first reported (real-time view) and in the last report."""
    osce = osce_daily()

    def first_and_last(results):
        first: dict[str, int] = {}
        prev = ""
        for rep, c, _, _ in results:  # a day belongs to the first report that covers it
            for d, n in Counter(day(p) for p in c).items():
                if d > prev:
                    first[d] = n
            prev = rep
        return first, Counter(day(p) for p in results[-1][1])

    f20, l20 = first_and_last(case)
    f21, l21 = first_and_last(placebo) if placebo else ({}, Counter())
    print("\n| day (2020) | candidates, as first reported | in last report | beyond "
          f"{BUFFER_KM} km (last) | OSCE SMM violations (report period ending 19:30 that day)"
          " | placebo 2021 same day: first / last |")
    print("|---|---|---|---|---|---|")
    far = Counter(day(p) for p in case[-1][1] if (p.get("distance_to_line_km") or 0) > BUFFER_KM)
    d = start
    while d <= end:
        s, s21 = d.isoformat(), d.replace(year=2021).isoformat()
        cells = [f20.get(s, 0), l20.get(s, 0), far.get(s, 0), osce.get(s, "-"),
                 f"{f21.get(s21, 0)} / {l21.get(s21, 0)}" if placebo else "-"]
        if any(x not in (0, "-", "0 / 0") for x in cells):
            print(f"| {s} | " + " | ".join(map(str, cells)) + " |")
        d += timedelta(days=1)
    print("(days with nothing in any column are left out)")


def window_start(w: dict) -> datetime | None:
    if w["start_utc"]:
        return datetime.fromisoformat(w["start_utc"].replace("Z", "+00:00"))
    if not w["start_local"]:
        return None
    local = datetime.fromisoformat(w["start_local"])
    tz = None
    if "Kyiv" in w["timezone"]:
        for key in ("Europe/Kyiv", "Europe/Kiev"):
            try:
                tz = ZoneInfo(key)
                break
            except Exception:  # older tz databases know only one of the two names
                continue
    return local.replace(tzinfo=tz or ZoneInfo("UTC")).astimezone(ZoneInfo("UTC"))


def other_windows() -> list[tuple[dict, datetime]]:
    print("\n## Other ceasefire windows of ceasefire_windows.csv\n")
    print("| id | start (UTC) | scope | FIRMS VIIRS rows that year | ORDLO line applies "
          "| replayable |")
    print("|---|---|---|---|---|---|")
    feasible = []
    with WINDOWS.open() as f:
        for w in csv.DictReader(f):
            if w["id"] == "donbas_2020":
                continue
            t0 = window_start(w)
            has = bool(t0) and t0.year in DATA_YEARS and t0.date() <= date(2022, 8, 31)
            ordlo = bool(t0) and ORDLO_FROM <= t0.date() <= ORDLO_TO
            front = w["scope"].startswith("full front")
            ok = has and ordlo and front
            why = "yes" if ok else "no: " + "; ".join(
                x for x, bad in (("year not in FIRMS file", not has),
                                 ("no ORDLO line", not ordlo),
                                 (f"scope: {w['scope']}", not front)) if bad)
            print(f"| {w['id']} | {t0:%Y-%m-%dT%H:%MZ} | {w['scope']} | {'yes' if has else 'no'}"
                  f" | {'yes' if ordlo else 'no'} | {why} |" if t0 else
                  f"| {w['id']} | ? | {w['scope']} | - | - | no start date |")
            if ok:
                feasible.append((w, t0))
    return feasible


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="first and last report date only")
    a = ap.parse_args()
    missing = [p for p in (FIRMS, WINDOWS, TOOL, TRUCEWATCH) if not p.exists()]
    if missing:
        sys.exit(f"data absent, needs {', '.join(map(str, missing))}")
    t_all = time.perf_counter()
    tool = load_tool()
    header, rows = read_rows()
    ref = list(tool.REF_YEARS)
    reports = [REPORTS_2020[0], REPORTS_2020[-1]] if a.quick else REPORTS_2020
    print("# Ceasefire replay: satellite-only candidate violations, trucewatch run per "
          "report date")
    case = replay_case(tool, header, rows, "Donbas ceasefire of 27 July 2020", ref, "2020",
                       "2020-07-26T21:01:00Z", reports, "Donbas ceasefire of 27 July 2020",
                       "replay-2020")
    placebo = replay_case(tool, header, rows, "Placebo: same dates of 2021, no ceasefire", ref,
                          "2021", "2021-07-26T21:01:00Z", [r.replace("2020", "2021", 1)
                                                            for r in reports],
                          "placebo: same dates in 2021, no ceasefire", "replay-2021")
    judged, summary = day_one(case, rows, ["2020-07-26", "2020-07-27"], "2020")
    day_one(placebo, rows, ["2021-07-26", "2021-07-27"], "2021 placebo")
    per_day(case, placebo, date(2020, 7, 26), date(2020, 8, 31))
    n, far = len(case[-1][1]), beyond(case[-1][1])
    ok = n <= GOAL_N and far == 0 and judged
    print(f"\nGoal <= {GOAL_N} satellite-only candidates in the five weeks, none beyond "
          f"{BUFFER_KM} km, day 1 judged: {'MET' if ok else 'NOT MET'} ({n} candidates, "
          f"{far} beyond {BUFFER_KM} km; day 1 in the first report: "
          f"{'covered with data' if judged else 'NOT judged'}, {summary})")

    # a ceasefire that would have broken down at once: the old line of contact in August
    # 2022, where the war burned (Avdiivka, Marinka, Horlivka). The channel must accuse.
    broken = replay_case(tool, header, rows, "Hypothetical ceasefire of 1 August 2022 on the "
                         "2015-22 line (the war went on: must accuse)",
                         [*ref, "2020", "2021"], "2022", "2022-07-31T21:00:00Z",
                         ["2022-08-07", "2022-08-31"] if a.quick else
                         ["2022-08-07", "2022-08-14", "2022-08-21", "2022-08-31"],
                         "hypothetical ceasefire of 1 August 2022", "replay-2022")
    print(f"\nBroken ceasefire: {len(broken[-1][1])} satellite-only candidate violation(s) "
          f"by 2022-08-31 ({beyond(broken[-1][1])} beyond {BUFFER_KM} km)")

    for w, t0 in other_windows():
        y = t0.year
        ref_w = [r for r in ref if int(r) < y]
        t0s = t0.strftime("%Y-%m-%dT%H:%M:00Z")
        first = t0.date() + timedelta(days=7)
        reps = [(first + timedelta(days=7 * k)).isoformat() for k in range(6)]
        reps = [reps[0], reps[-1]] if a.quick else reps
        replay_case(tool, header, rows, f"{w['name']} ({w['id']}; outcome: "
                    f"{w['observed_outcome'][:120]})", ref_w, str(y), t0s, reps, w["name"],
                    f"replay-{w['id']}")
    print(f"\nwall time {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
