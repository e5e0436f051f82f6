"""How long one tick of the products clock takes on a store with many incidents (the
automatic list can only follow the data as fast as a tick runs).

    PYTHONPATH=src:benchmarks python benchmarks/products_clock.py [--incidents 2000 --days 30
        --catch-up-days 7]

A synthetic store: ``--incidents`` automatic incidents (a tenth verified, each with a
candidate violation) spread over ``--days`` UTC days. It times the first tick (every
list and bulletin of the days within ``--catch-up-days`` of now published; the clock's
default is 7, give ``--days + 3`` for the whole history), a second clock racing the
first on the same store (its attempts are no-ops), an idle tick (nothing changed: everything
compared, nothing published) and a tick after one late incident (one list and one
bulletin revised)."""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trucewatch.model.enums import Category, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location
from trucewatch.reports.tiers import tick
from trucewatch.storage import SqliteStore


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=2000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--catch-up-days", type=int, default=7)
    a = ap.parse_args()
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "tw.db")
        incs, vios = [], []
        for k in range(a.incidents):
            at = t0 + timedelta(seconds=k * a.days * 86400 / a.incidents)
            incs.append(Incident(f"inc-{k}", Category.EXPLOSION_IMPACT, at, at,
                                 Location(48 + (k % 50) / 100, 37.8, 500.0), [f"o-{k}"],
                                 status=Status.VERIFIED if k % 10 == 0 else Status.AUTOMATIC))
            vios.append(Violation(f"v-{k}", f"inc-{k}", "agr", "r", "x",
                                  Category.EXPLOSION_IMPACT, at))
        store.save_incidents(incs, vios)
        now = t0 + timedelta(days=a.days + 2)
        out = Path(tmp) / "p"
        s = time.perf_counter()
        first = tick(store, now, out, catch_up_days=a.catch_up_days)
        t_first = time.perf_counter() - s
        s = time.perf_counter()
        whole = tick(store, now, out, catch_up_days=a.days + 3)  # the rest, explicitly
        t_whole = time.perf_counter() - s
        s = time.perf_counter()
        idle = tick(store, now + timedelta(minutes=1), out, catch_up_days=a.days + 3)
        t_idle = time.perf_counter() - s
        late = t0 + timedelta(days=a.days // 2, hours=5)
        store.save_incidents([Incident("late", Category.FIRE, late, late,
                                       Location(48, 37.8, 500.0), ["o-late"])], [],
                             replace_automatic=False)
        s = time.perf_counter()
        rev = tick(store, now + timedelta(minutes=2), out, catch_up_days=a.catch_up_days)
        t_rev = time.perf_counter() - s
        store.close()
    print(f"{a.incidents} incidents over {a.days} days")
    print(f"first tick (catch-up {a.catch_up_days} days): {len(first.published)} products "
          f"in {t_first:.2f} s, {len(first.skipped_days)} older days left out")
    print(f"then the whole history: {len(whole.published)} products in {t_whole:.2f} s")
    print(f"idle tick: {len(idle.published)} published, {idle.unchanged} unchanged "
          f"in {t_idle:.2f} s")
    print(f"after one late incident: {[p.name for p in rev.published]} in {t_rev:.2f} s")


if __name__ == "__main__":
    main()
