"""`trucewatch report --store S --date D`: a day's published products written from the
store alone (no re-ingest, no file outside the store), byte for byte, each checked
against its published SHA-256."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trucewatch.cli.app import app
from trucewatch.errors import IntegrityError, NotFoundError
from trucewatch.reports.archive import restore, revision_of
from trucewatch.storage import SqliteStore


def test_report_from_the_store_alone(built_cycle: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(built_cycle / "trucewatch.db", db)
    store = SqliteStore(db)
    published = store.products()
    store.close()
    day = str(published[-1]["report_date"])
    out = tmp_path / "again"
    r = CliRunner().invoke(app, ["report", "--store", str(db), "--date", day, "--out",
                                 str(out)])
    assert r.exit_code == 0, r.output
    mine = [p for p in published if p["report_date"] == day]
    latest = max(revision_of(str(p["name"])) for p in mine)
    want = {str(p["name"]): str(p["sha256"]) for p in mine
            if revision_of(str(p["name"])) == latest}
    assert {p.name for p in out.iterdir()} == set(want)
    for name, sha in want.items():
        content = (out / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == sha
        assert content == (built_cycle / name).read_bytes()
    # the bytes came from the store, not from the published files
    store = SqliteStore(db)
    assert all(x.from_store for x in restore(store, date.fromisoformat(day), tmp_path / "x"))
    with pytest.raises(NotFoundError, match="no product published for 2020-01-01"):
        restore(store, date(2020, 1, 1), tmp_path / "y")
    store.close()


def test_older_store_falls_back_to_the_recorded_file(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    a = tmp_path / "bulletin-2026-05-01-public.json"
    b = tmp_path / "bulletin-2026-05-02-public.json"
    a.write_text('{"n": 1}')
    b.write_text('{"n": 2}')
    # published without its bytes (as before products were archived)
    store.publish_product(a, "json", date(2026, 5, 1), "public")
    store.publish_product(b, "json", date(2026, 5, 2), "public")
    (first,) = restore(store, date(2026, 5, 1), tmp_path / "o1")
    assert not first.from_store and first.path.read_text() == '{"n": 1}'
    a.unlink()  # archived by the first restore: the file is no longer needed
    (again,) = restore(store, date(2026, 5, 1), tmp_path / "o2")
    assert again.from_store and again.path.read_text() == '{"n": 1}'
    b.write_text('{"n": 3}')  # a published product edited on disk
    with pytest.raises(IntegrityError, match="not the one published"):
        restore(store, date(2026, 5, 2), tmp_path / "o3")
    b.unlink()
    with pytest.raises(NotFoundError, match="is gone"):
        restore(store, date(2026, 5, 2), tmp_path / "o4")
    store.close()


def test_report_needs_a_date_or_inputs(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "none.db"), "--date",
                                 "2026-05-01"])
    assert r.exit_code == 2 and "no such file" in _flat(r.output)
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--store S --date D" in _flat(r.output)


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())
