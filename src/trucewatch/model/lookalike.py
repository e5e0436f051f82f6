"""Look-alike identifiers: station ids, key ids and source names, checked as principal
names are (:mod:`trucewatch.model.principal`).

An identifier is refused when it holds an invisible, format or control character, or
when its letters mix scripts (``A0O1`` with a Cyrillic ``О``). Two different identifiers
are look-alikes when their *skeletons* are equal: NFKC, casefolded, each letter of
another script that looks like a Latin one replaced by it (UTS #39's idea, for the
scripts a mission meets). ``А001`` (Cyrillic А) is a look-alike of ``A001``, and so is
``a001``: ids that differ by case only are refused beside each other too, since people
read them as one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from trucewatch.model.principal import _script, skeleton


def identifier_skeleton(text: str) -> str:
    """What ``text`` looks like, for comparing identifiers."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return skeleton(folded)


def identifier_problem(text: str) -> str | None:
    """Why ``text`` cannot be an identifier (hidden characters, mixed scripts), or None."""
    for ch in text:
        if unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cs", "Cn"):
            return (f"{text.encode('unicode_escape').decode()!r} holds the invisible or "
                    f"control character U+{ord(ch):04X}")
    scripts = {_script(ch) for ch in text if unicodedata.category(ch)[0] == "L"}
    if len(scripts) > 1:
        return f"{text!r} mixes scripts ({', '.join(sorted(scripts)).lower()})"
    return None


def lookalike(text: str, known: Iterable[str]) -> str | None:
    """The first of ``known`` that differs from ``text`` but looks like it, or None."""
    mine = identifier_skeleton(text)
    return next((k for k in known if k != text and identifier_skeleton(k) == mine), None)


def lookalike_pairs(ids: Iterable[str]) -> list[tuple[str, str]]:
    """The pairs of different ids among ``ids`` that look alike (each pair once)."""
    first: dict[str, str] = {}
    out = []
    for i in dict.fromkeys(ids):
        sk = identifier_skeleton(i)
        if sk in first:
            out.append((first[sk], i))
        else:
            first[sk] = i
    return out
