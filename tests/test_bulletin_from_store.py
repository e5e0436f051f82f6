"""The daily bulletin renders from the store alone (reports/basis.py): on the built-in
scenario's report day, the bulletin rendered from the store (HTML, PDF and JSON, public
and restricted) carries the cycle's incident ids, rulings and figures."""

from __future__ import annotations

import io
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trucewatch.cli.app import app
from trucewatch.errors import NotFoundError
from trucewatch.reports.basis import load_basis, render_from_store
from trucewatch.storage import SqliteStore

# what may differ between the cycle's render and a later one from the same store: when it
# was made, the audit log (the render basis and the products were logged since) and the
# revision bookkeeping
_BOOKKEEPING = {"generated_at", "integrity", "revision", "source_sha256"}


def _copy(built_cycle: Path, tmp_path: Path) -> tuple[Path, date]:
    db = tmp_path / "copy.db"
    shutil.copy(built_cycle / "trucewatch.db", db)
    (first,) = sorted(built_cycle.glob("bulletin-*-public.json"))[:1]
    return db, date.fromisoformat(first.name.split("-public")[0][len("bulletin-"):])


def _substance(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _BOOKKEEPING}


@pytest.mark.parametrize("variant", ["public", "restricted"])
def test_bulletin_from_the_store_equals_the_cycles(built_cycle: Path, tmp_path: Path,
                                                   variant: str) -> None:
    db, day = _copy(built_cycle, tmp_path)
    cycle = json.loads((built_cycle / f"bulletin-{day}-{variant}.json").read_text())
    store = SqliteStore(db)
    try:
        assert load_basis(store, day) is not None, "the cycle did not keep its basis"
        files = render_from_store(store, day, tmp_path / "out", pdf=variant == "restricted")
    finally:
        store.close()
    got = json.loads(files[variant].json.read_text())
    assert files[variant].json.name == f"bulletin-{day}-{variant}.json"
    assert files[variant].html.name == f"bulletin-{day}-{variant}.html"
    ids = [r["id"] for r in cycle["incidents"]]
    assert ids and [r["id"] for r in got["incidents"]] == ids
    assert got["rulings"] == cycle["rulings"] and cycle["rulings"]
    for key in ("headline", "sectors", "summary", "periods", "zones", "coverage",
                "verified_violations", "coverage_maps", "sensors", "review"):
        assert got[key] == cycle[key], key
    assert _substance(got) == _substance(cycle)
    html = files[variant].html.read_text()
    assert all(i in html for i in ids)
    if variant == "restricted":
        from pypdf import PdfReader

        pdf = files[variant].pdf
        assert pdf is not None and pdf.name == f"bulletin-{day}-restricted.pdf"
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
        flat = "".join(text.split())  # ids may wrap across lines in a table cell
        missing = [i for i in ids if i not in flat]
        assert not missing, missing


def test_report_renders_a_day_the_store_has_no_bulletin_for(built_cycle: Path,
                                                             tmp_path: Path) -> None:
    db, day = _copy(built_cycle, tmp_path)
    out = tmp_path / "rendered"
    r = CliRunner().invoke(app, ["report", "--store", str(db), "--date", str(day),
                                 "--out", str(out), "--render", "--no-pdf"])
    assert r.exit_code == 0, r.output
    names = {p.name for p in out.iterdir()}
    assert {f"bulletin-{day}-{v}.{e}" for v in ("public", "restricted")
            for e in ("html", "json")} <= names
    store = SqliteStore(db)
    try:
        with pytest.raises(NotFoundError, match="no render basis for 2020-01-01"):
            render_from_store(store, date(2020, 1, 1), tmp_path / "none")
    finally:
        store.close()


def test_a_derived_basis_gives_the_cycles_satellite_view(built_cycle: Path, scenario: Any,
                                                        tmp_path: Path) -> None:
    """Where no cycle kept a basis (a store the worker processes), it is derived from
    the stored detections and a baseline artifact: the same view as the cycle's."""
    from trucewatch.agreement import load_agreement
    from trucewatch.pipeline.bulletins import derive_basis

    db, day = _copy(built_cycle, tmp_path)
    store = SqliteStore(db)
    try:
        kept = load_basis(store, day)
        assert kept is not None
        with pytest.raises(NotFoundError, match="no baseline artifact"):
            derive_basis(store, day, baseline=tmp_path / "none.npz")
        got = derive_basis(store, day, load_agreement(scenario.agreement),
                           baseline=built_cycle / "baseline.npz")
    finally:
        store.close()
    assert got.daily.equals(kept.daily)
    # the cloud record is not in the store: its data gaps show as days without
    # detections in a derived basis, no other day differs
    derived, cycle = set(got.coverage.days_without_detections), set(
        kept.coverage.days_without_detections)
    assert cycle <= derived <= cycle | set(kept.coverage.days_without_data)
    assert not got.coverage.cloud_known and not got.coverage.days_without_data
    assert got.coverage.start == kept.coverage.start and got.coverage.end == day
    assert "not restored" in got.derived and got.sensors is None


def test_the_clock_renders_the_bulletin_from_the_store(built_cycle: Path, tmp_path: Path
                                                       ) -> None:
    """The products clock at the cut (19:30 Kyiv) publishes HTML and JSON bulletins
    from the store: for the day before the cycle's, which no cycle rendered, from a basis
    derived with the worker's baseline artifact; for the cycle's own day, nothing unless
    the 19:30 cut says something else (then a revision, never an edit). A second tick
    with nothing changed renders nothing."""
    from datetime import datetime, timedelta

    from trucewatch.pipeline.bulletins import StoreBulletins
    from trucewatch.reports.tiers import Schedule, tick

    db, day = _copy(built_cycle, tmp_path)
    shutil.copy(built_cycle / "baseline.npz", str(db) + ".baseline.npz")  # as the worker
    prev = day - timedelta(days=1)
    store = SqliteStore(db)
    schedule = Schedule()
    now = schedule.cut(day) + timedelta(minutes=1)
    maker = StoreBulletins(pdf=False)
    out = tmp_path / "p"
    try:
        before = {str(p["name"]) for p in store.products()}
        r = tick(store, now, out, schedule, bulletins=maker, catch_up_days=1)
        assert not r.not_rendered, r.not_rendered
        rendered = {p.name for p in r.published if p.name.startswith("bulletin-")}
        assert {f"bulletin-{prev}-{v}.{e}" for v in ("public", "restricted")
                for e in ("html", "json")} <= rendered
        assert all(".rev" in n for n in rendered if n.startswith(f"bulletin-{day}-"))
        assert not rendered & before
        for n in rendered:
            p = store.product(n)
            assert p is not None and len(str(p["sha256"])) == 64
        doc = json.loads((out / f"bulletin-{prev}-restricted.json").read_text())
        cut = schedule.cut(prev)
        assert doc["incidents"] and all(
            datetime.fromisoformat(f"{r['date']}T{r['time']}:00+00:00") < cut
            for r in doc["incidents"])
        assert doc["source_sha256"] and doc["as_of"]["derived_from_store"]
        again = tick(store, now + timedelta(minutes=5), out, schedule, bulletins=maker,
                     catch_up_days=1)
        assert not [p for p in again.published if p.name.startswith("bulletin-")]
    finally:
        store.close()


def test_report_for_a_day_with_nothing_names_the_published_days(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    a = tmp_path / "bulletin-2026-05-01-public.json"
    a.write_text('{"n": 1}')
    store.publish_product(a, "json", date(2026, 5, 1), "public")
    store.close()
    r = CliRunner().invoke(app, ["report", "--store", str(db), "--date", "2026-05-02",
                                 "--out", str(tmp_path / "o"), "--no-pdf"])
    text = " ".join((r.output + str(r.exception or "") + " "
                     + str(getattr(r.exception, "fix", ""))).split())
    assert r.exit_code != 0
    assert "no product published for 2026-05-02" in text and "cannot be rendered" in text
    assert "2026-05-01" in text  # the days there are
