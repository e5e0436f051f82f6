"""Hostile finding: ``--store`` naming something that is not a store (a text file, a CSV
given by mistake, a folder) must end in one line ``error: ... (fix: ...)`` and exit
status 2, for every command that takes ``--store``; never a traceback, and the thing
named is left as it was."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from trucewatch.errors import StorageError
from trucewatch.storage import open_store

# every command that takes --store, with the other arguments it needs to reach the store
COMMANDS: list[list[str]] = [
    ["verify"],
    ["run", "--out", "{tmp}/o", "--no-pdf"],
    ["quarantine"],
    ["ingest", "{input}"],
    ["drones", "ingest", "{input}"],
    ["allegations", "ingest", "{input}"],
    ["allegations", "rulings"],
    ["review", "queue"],
    ["review", "history", "inc-1"],
    ["review", "figures"],
    ["review", "claim", "inc-1", "--token", "t"],
    ["review", "release", "inc-1", "--token", "t"],
    ["review", "decide", "inc-1", "--token", "t", "--status", "verified", "--why", "r"],
    ["review", "modify", "inc-1", "--token", "t", "--why", "r", "--lat", "48"],
    ["review", "add", "--token", "t", "--why", "r", "--category", "fire", "--lat", "48",
     "--lon", "38", "--time", "2026-05-30T04:00:00Z"],
    ["tokens", "new", "anna", "--role", "analyst"],
    ["tokens", "list"],
    ["tokens", "revoke", "anna"],
    ["alerts", "cap", "--out", "{tmp}/feed.xml"],
    ["alerts", "dead-letters"],
    ["alerts", "push", "--url", "http://127.0.0.1:9/hook"],
    ["alerts", "redeliver", "--url", "http://127.0.0.1:9/hook"],
    ["report", "--date", "2026-05-31", "--out", "{tmp}/o"],
    ["satellite", "poll", "--map-key", "k", "--bbox", "37,47,39,49", "--once"],
    ["serve", "--agreement", "{input}"],
]


def _run(args: list[str], capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    from trucewatch.cli.app import main

    monkeypatch.setattr(sys, "argv", ["trucewatch", *args])
    monkeypatch.delenv("TRUCEWATCH_TOKEN", raising=False)
    monkeypatch.setenv("TRUCEWATCH_WEBHOOK_SECRET", "s" * 32)
    with pytest.raises(SystemExit) as done:
        main()
    code = done.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize("kind", ["text", "folder"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_store_command_refuses_what_is_not_a_store(
        command: list[str], kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / ("notes.txt" if kind == "text" else "out")
    if kind == "text":
        target.write_text("latitude,longitude\n48.1,37.9\n", encoding="utf-8")
    else:
        target.mkdir()
    before = target.read_bytes() if kind == "text" else sorted(target.iterdir())
    given = tmp_path / "input.json"
    given.write_text("{}", encoding="utf-8")
    args = [a.format(input=given, tmp=tmp_path) for a in command] + ["--store", str(target)]
    code, stderr = _run(args, capsys, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, (args, stderr)
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert str(target) in lines[0] and "(fix: " in lines[0], stderr
    assert "not a SQLite store" in lines[0], stderr
    assert (target.read_bytes() if kind == "text" else sorted(target.iterdir())) == before


def test_open_store_names_the_problem(tmp_path: Path) -> None:
    text = tmp_path / "bulletin.html"
    text.write_text("<html></html>", encoding="utf-8")
    with pytest.raises(StorageError, match="is not a SQLite store") as e:
        open_store(text)
    assert e.value.fix and "\n" not in e.value.one_line()
    with pytest.raises(StorageError, match="is a folder") as e:
        open_store(tmp_path)
    assert "trucewatch.db" in (e.value.fix or "")
    # an empty file (touch s.db) and a new path are new stores, as before
    (tmp_path / "empty.db").touch()
    open_store(tmp_path / "empty.db").close()
    open_store(tmp_path / "new.db").close()
