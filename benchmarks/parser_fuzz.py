"""Benchmark: hostile inputs against every parser (issue 11, "Hostile-input suite").

Each parser (FIRMS reader, station inventory, detections, drone reports and patrols,
allegations, agreement loader, signed envelope, key registry) gets hypothesis-generated
inputs from :mod:`lab.hostile`: valid layouts with hostile values, mutated
seeds and random bytes. A parser passes an input when it returns a sound result or raises
a TrucewatchError; anything else (a traceback) is counted as a failure and its kind is
listed. With ``--atheris SECONDS`` each parser is also fuzzed by atheris (libFuzzer,
coverage-guided) through ``python -m lab.fuzz`` for that long.

    .venv/bin/python benchmarks/parser_fuzz.py [--examples 2000] [--seconds 60]
        [--parsers firms,stations,...] [--atheris 30]

Goal: 0 tracebacks for every parser.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lab.hostile import PARSERS, SEEDS, SPECIAL, judge, signature, strategy, targets


def hypothesis_run(name: str, examples: int, seconds: float) -> tuple[int, Counter[str], str]:
    target = targets()[name]
    tried = 0
    failures: Counter[str] = Counter()
    first: dict[str, str] = {}
    stop = time.monotonic() + seconds

    def one(data: bytes) -> None:
        nonlocal tried
        tried += 1
        tb = judge(target, data)
        if tb is not None:
            sig = signature(tb)
            failures[sig] += 1
            first.setdefault(sig, repr(data[:200]))

    for data in SPECIAL.get(name, []) + SEEDS[name]:
        one(data)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        raw = data.draw(strategy(name))  # drawn every time: hypothesis wants the same draws
        if time.monotonic() < stop:
            one(raw)

    run()
    example = "; ".join(f"{s} <- {first[s]}" for s in list(failures)[:3])
    return tried, failures, example


def atheris_run(name: str, seconds: int) -> tuple[int, int, str]:
    """(executions, crashes, note) of atheris on one parser."""
    if name not in ("firms", "stations", "detections", "drones", "allegations", "agreement",
                    "envelope", "keys"):
        return 0, 0, "no atheris target"
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for k, seed in enumerate(SEEDS[name]):
            (corpus / f"seed{k}").write_bytes(seed)
        proc = subprocess.run(
            [sys.executable, "-m", "lab.fuzz", name, str(corpus),
             f"-max_total_time={seconds}", "-seed=1", "-timeout=20", "-rss_limit_mb=2048",
             f"-artifact_prefix={tmp}/"], capture_output=True, text=True,
            timeout=seconds + 120, cwd=tmp,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)})
        runs = re.findall(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)", proc.stderr)
        crashes = list(Path(tmp).glob("crash-*")) + list(Path(tmp).glob("timeout-*")) \
            + list(Path(tmp).glob("oom-*"))
        note = ""
        if crashes or proc.returncode != 0:
            tail = [x for x in proc.stderr.splitlines() if x.strip()][-4:]
            note = " / ".join(tail)[:400]
        return (int(runs[-1]) if runs else 0), len(crashes) or int(proc.returncode != 0), note


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=2000, help="hypothesis inputs per parser")
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="at most this long per parser for hypothesis")
    ap.add_argument("--parsers", default=",".join(PARSERS))
    ap.add_argument("--atheris", type=int, default=0, help="seconds of atheris per parser")
    args = ap.parse_args()
    print(f"# Parser fuzzing: hypothesis up to {args.examples} inputs / {args.seconds:g} s per "
          f"parser" + (f", atheris {args.atheris} s per parser" if args.atheris else ""))
    print("\n| parser | hypothesis inputs | tracebacks | kinds | atheris runs | atheris "
          "crashes | s |")
    print("|---|---|---|---|---|---|---|")
    total = 0
    notes = []
    for name in args.parsers.split(","):
        t0 = time.perf_counter()
        tried, failures, example = hypothesis_run(name, args.examples, args.seconds)
        runs, crashes, note = atheris_run(name, args.atheris) if args.atheris else (0, 0, "")
        total += sum(failures.values()) + crashes
        wall = time.perf_counter() - t0
        print(f"| {name} | {tried} | {sum(failures.values())} | {len(failures)} | "
              f"{runs if args.atheris else '-'} | {crashes if args.atheris else '-'} | "
              f"{wall:.0f} |", flush=True)
        if failures:
            notes.append(f"{name}: {example}")
        if note:
            notes.append(f"{name} (atheris): {note}")
    for n in notes:
        print(f"\n- {n}")
    print(f"\nGoal 0 tracebacks: {'MET' if total == 0 else f'NOT MET ({total})'}")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
