"""Record the built-in cycle's outcome as the golden file that
``tests/test_behaviour_unchanged.py`` compares every later run with.

    PYTHONPATH=src:benchmarks python benchmarks/record_golden.py

Re-run it ONLY when a change of the cycle's outcome is intended (and say so in the
commit): the file is the project's statement that a refactoring changed nothing.

What is kept: every incident the store holds (id, category, status, rule, sector,
zones, location rounded to 5 decimals, observation ids), the violations, the allegation
rulings, and both bulletins' JSON (headline, periods, sectors, zones, incidents, coverage,
ingest figures, sensor figures, as-of figures, rulings, review figures, fusion figures).

What is left out, because it is random or clock-dependent by design (see ``VOLATILE``):
the bulletin's ``generated_at``; the time a refused submission was received (``at``) and
the receipt time quoted in a replay's reason; the audit log's head hash (its entries hold
the run's timestamps; the entry count is kept); the package version.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "builtin-cycle.json"

VOLATILE = {
    "bulletin.generated_at": "the wall-clock time the bulletin was written",
    "bulletin.trucewatch_version": "the package version, not the outcome",
    "bulletin.integrity.head": "the audit log's head hash covers the run's timestamps",
    "bulletin.refused_submissions[].at": "when the refused input was received (now)",
    "bulletin.refused_submissions[].reason": "receipt times in a replay's reason are "
                                            "replaced by <time>",
    "bulletin.ingest[].refused": "the same reason, the same replacement",
}
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _rounded(value: Any, places: int = 5) -> Any:
    if isinstance(value, float):
        return round(value, places)
    if isinstance(value, dict):
        return {str(k): _rounded(v, places) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, places) for v in value]
    return value


def _bulletin(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    for key in ("generated_at", "trucewatch_version"):
        doc.pop(key, None)
    if isinstance(doc.get("integrity"), dict):
        doc["integrity"] = {k: v for k, v in doc["integrity"].items() if k != "head"}
    doc["refused_submissions"] = [
        {**{k: v for k, v in r.items() if k != "at"},
         "reason": _TIME.sub("<time>", str(r.get("reason", "")))}
        for r in doc.get("refused_submissions", [])]
    doc["ingest"] = [{**r, "refused": _TIME.sub("<time>", str(r["refused"]))}
                     if r.get("refused") else r for r in doc.get("ingest", [])]
    out: dict[str, Any] = _rounded(doc)
    return out


def summarise(out: Path, store_at: str | None = None) -> dict[str, Any]:
    """The outcome of a cycle run into ``out`` (its bulletins, and its store: the one
    there, or ``store_at``, a SQLite file or a PostgreSQL URL)."""
    from trucewatch.storage import open_store

    store = open_store(store_at or out / "trucewatch.db")
    try:
        incidents = sorted(({
            "id": i.id, "category": str(i.category), "status": str(i.status),
            "rule": str(i.attributes.get("rule", "")), "sector": i.sector_id,
            "zones": sorted(i.zone_ids), "n_sources": i.n_sources,
            "time_start": i.time_start.isoformat(), "time_end": i.time_end.isoformat(),
            "lat": round(i.location.lat, 5), "lon": round(i.location.lon, 5),
            "observation_ids": sorted(i.observation_ids)} for i in store.incidents()),
            key=lambda d: str(d["id"]))
        violations = sorted(({
            "id": v.id, "incident_id": v.incident_id, "rule": str(v.rule),
            "category": str(v.category), "status": str(v.status),
            "zones": sorted(v.zone_ids)} for v in store.violations()),
            key=lambda d: str(d["id"]))
        rulings = sorted((_rounded(r) for r in store.rulings()),
                         key=lambda d: str(d.get("allegation_id", "")))
    finally:
        store.close()
    bulletins = {p.name.rsplit("-", 1)[1].removesuffix(".json"):
                 _bulletin(json.loads(p.read_text()))
                 for p in sorted(out.glob("bulletin-*.json"))}
    return {"left_out": VOLATILE, "incidents": incidents, "violations": violations,
            "rulings": rulings, "bulletins": bulletins}


def run_builtin(work: Path) -> dict[str, Any]:
    """Generate the built-in scenario under ``work``, run its cycle, and summarise it."""
    from lab.cycle import builtin_cycle
    from trucewatch.demo import generate

    scenario = generate(work / "scenario")
    builtin_cycle(scenario, work / "out")
    return summarise(work / "out")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        got = run_builtin(Path(tmp))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True, default=str) + "\n")
    print(f"wrote {GOLDEN} ({len(got['incidents'])} incidents, {len(got['rulings'])} "
          "rulings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
