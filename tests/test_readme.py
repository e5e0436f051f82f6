"""What the README and docs/ tell a newcomer holds: every command and option they show
exists in the CLI (README's Commands block, its PostGIS recipe, every doc's examples), every
command of the CLI is in the README's Commands block, every doc is in the README's list of
docs, and every relative link resolves."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from trucewatch.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS, ROOT / "BENCHMARKS.md"]
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Use:
    """One `trucewatch ...` shown in a page: its words and the options on it (and on its
    indented continuation lines, comments left out)."""

    line: int
    words: list[str]
    options: set[str]


def _uses(text: str) -> list[Use]:
    uses: list[Use] = []
    for block in re.finditer(r"^```(?:sh|console|bash)?\n(.*?)^```", text, re.S | re.M):
        first = text.count("\n", 0, block.start(1)) + 1
        head: tuple[int, str] | None = None
        rest: list[str] = []
        for n, line in enumerate([*block.group(1).splitlines(), ""], start=first):
            code = line.split("#", 1)[0]
            m = re.search(r"(?:^\$ |^|\$\()trucewatch\s+(.*)", code)
            if m or not line[:1].isspace():  # a new command, or the end of the last one
                if head is not None:
                    uses.append(_use(head[0], head[1], rest))
                head, rest = ((n, m.group(1)) if m else None), []
            elif head is not None:
                rest.append(code)
    # the blocks blanked, their lines kept, so that a prose use keeps its line number
    prose = re.sub(r"^```.*?^```", lambda b: "\n" * b.group(0).count("\n"), text,
                   flags=re.S | re.M)
    for m in re.finditer(r"(?<!`)`trucewatch ([^`]+)`", prose):
        uses.append(_use(prose.count("\n", 0, m.start()) + 1, m.group(1), []))
    return uses


def _use(line: int, head: str, rest: list[str]) -> Use:
    words = head.split()
    return Use(line, words, set(OPTION.findall(" ".join([head, *rest]))))


def _leaves(cmd: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if not hasattr(cmd, "commands"):
        return {path: cmd}
    found: dict[tuple[str, ...], Any] = {}
    for name, sub in cmd.commands.items():
        found |= _leaves(sub, (*path, name))
    return found


def _resolve(root: Any, use: Use) -> tuple[list[Any], list[str], list[tuple[str, ...]]]:
    """The commands a use names (``review queue|claim`` names two), the problems, and
    the command paths named."""
    level: list[tuple[tuple[str, ...], Any]] = [((), root)]
    problems: list[str] = []
    words = iter(use.words)
    while level and all(hasattr(c, "commands") for _, c in level):
        word = next(words, None)
        if word is None or word == "...":  # `trucewatch review ...`: the group itself
            return [], problems, []
        nxt = []
        for path, group in level:
            for name in word.split("|"):
                if name in group.commands:
                    nxt.append(((*path, name), group.commands[name]))
                else:
                    problems.append(f"line {use.line}: `trucewatch {' '.join(path)} {name}`: "
                                    "no such command")
        level = nxt
    return [c for _, c in level], problems, [p for p, _ in level]


def _problems(text: str, root: Any) -> list[str]:
    problems: list[str] = []
    for use in _uses(text):
        commands, missing, paths = _resolve(root, use)
        problems += missing
        for opt in sorted(use.options):  # on one of the commands named, as the page says
            if commands and not any(opt in p.opts or opt in p.secondary_opts
                                    for c in commands for p in c.params):
                names = "|".join(" ".join(p) for p in paths)
                problems.append(f"line {use.line}: `trucewatch {names}`: no option {opt}")
    return problems


@pytest.fixture(scope="module")
def cli() -> Any:
    return typer.main.get_command(app)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_and_option_shown_exists(page: Path, cli: Any) -> None:
    assert _problems(page.read_text(encoding="utf-8"), cli) == []


def test_a_wrong_command_or_option_is_caught(cli: Any) -> None:
    """The check itself can fail: a renamed command, a dropped option, in a block or in
    prose."""
    text = ("```sh\ntrucewatch review queue|claimm --store S\n"
            "trucewatch run --out DIR\n    [--no-such-option]   # --in-a-comment is prose\n"
            "```\nThen `trucewatch verify --stor S`.\n")
    assert _problems(text, cli) == [
        "line 2: `trucewatch review claimm`: no such command",
        "line 3: `trucewatch run`: no option --no-such-option",
        "line 6: `trucewatch verify`: no option --stor",
    ]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^## {title}\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, f"README.md has no '## {title}' section"
    return m.group(1)


def test_every_cli_command_is_in_the_readme_commands_block(cli: Any) -> None:
    named: set[tuple[str, ...]] = set()
    for use in _uses(_section("Commands")):
        named |= set(_resolve(cli, use)[2])
    assert set(_leaves(cli)) - named == set(), "commands missing from README's Commands"


def test_every_doc_is_in_the_readme_docs_list() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^Docs: (.*?)(?:\n\n|\Z)", text, re.S | re.M)
    assert m, "README.md has no 'Docs:' list"
    listed = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", m.group(1)))
    assert {d.name for d in DOCS} - listed == set(), "docs missing from README's Docs list"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = {m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
               if not re.match(r"[a-z]+:", m.group(1))}
    assert sorted(t for t in targets if not (page.parent / t).exists()) == []
