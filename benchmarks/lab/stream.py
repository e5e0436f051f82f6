"""A scenario's inputs fed into a store in replay order, through the intake exactly as
``POST /api/v1/ingest/{source}`` receives them (no HTTP), for the worker's tests and
benchmarks: ``python -m lab.stream STORE SCENARIO_DIR KEYS [--from K] [--to N]``."""

from __future__ import annotations

import sys
from pathlib import Path

from trucewatch.intake import receive
from trucewatch.intake.sources import adapters
from trucewatch.integrity.keys import KeyRegistry
from trucewatch.replay import Item, plan
from trucewatch.storage import open_store


def feed(store_path: Path | str, scenario: Path, keys: Path | None,
         items: list[Item] | None = None) -> int:
    """Receive ``items`` (default: the whole scenario, in order) into the store; returns
    how many were accepted."""
    registry = KeyRegistry.load(keys) if keys else KeyRegistry()
    accepted = 0
    for k, item in enumerate(items if items is not None else plan(scenario)):
        store = open_store(store_path)
        try:
            adapter = adapters(store)[item.source]
            o = receive(store, item.body, f"stream-{k:03d}-{item.name}", adapter,
                        registry=registry, actor="stream")
            accepted += int(not o.refused)
        finally:
            store.close()
    return accepted


if __name__ == "__main__":
    args = sys.argv[1:]
    lo = int(args[args.index("--from") + 1]) if "--from" in args else 0
    hi = int(args[args.index("--to") + 1]) if "--to" in args else None
    root = Path(args[1])
    feed(args[0], root, Path(args[2]) if args[2] != "-" else None, plan(root)[lo:hi])
