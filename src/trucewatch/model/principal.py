"""Principals: who acts, as the store knows them (issue 11).

A principal has a stable ``id`` (``p-`` and 16 hex digits), a *canonical* name, unique
across every principal the store ever had (disabled ones included), a display name, a
role and, for a liaison, a party. Tokens belong to a principal; it may hold several over
time, each revocable. The two-person rule compares ids, never names.

Canonical names (:func:`canonical_name`)
    NFKC, then casefold, then NFKC again (Unicode's NFKC_Casefold, so ``ANNA``,
    ``Anna`` and fullwidth ``ａｎｎａ`` are all ``anna``); leading and trailing
    whitespace removed and inner runs of whitespace made one space. A name is
    *refused*, never silently cleaned, when it holds an invisible or format character
    (Unicode category Cf: U+200B zero-width space, U+200D, U+2060, U+FEFF, bidi
    marks and overrides...), a control character (Cc, newlines included), or anything
    but letters, marks, digits, spaces and ``. - _ @ '``; when its letters mix scripts
    (``аnna`` with a Cyrillic ``а``); when it is written wholly in another script's
    look-alike letters of a name the store already holds (``расо``, all Cyrillic,
    beside a Latin ``paco``: :func:`skeleton`); when it is empty or longer than 64 characters; or
    when it is a system actor of the audit log (``pipeline``, ``ingest``...). A refused
    name is a clear error, so nobody holds a name that differs from another by a
    character nobody sees.

Names written by older versions (tokens and review history from before principals) are
compared through :func:`legacy_key`: the same folding, with the invisible and control
characters *dropped* (they cannot be refused after the fact), so ``mallory\\u200b`` in
an old history is ``mallory``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from trucewatch.errors import InvalidInputError

MAX_NAME = 64
# actors the system itself writes into the audit log: no person may be called so
RESERVED = frozenset({"pipeline", "ingest", "system", "bootstrap", "migration", "serve",
                      "scenario", "anonymous", "nobody"})
_PUNCT = frozenset(".-_@' ")
_SPACES = re.compile(r"\s+")


class Actor(Protocol):
    """Anything that names a principal: its id decides, its name is for people."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class PrincipalRecord:
    """A principal as stored. ``name`` is the canonical name (what uniqueness compares
    and what commands take), ``display_name`` the name as it was given (what history
    shows)."""

    id: str
    name: str
    display_name: str
    role: str
    party: str | None
    created_at: str
    disabled_at: str | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def _fold(text: str) -> str:
    """NFKC, casefold, NFKC, repeated to a fixed point, so that folding a canonical name
    again gives the same name (what is stored is what a later lookup computes)."""
    for _ in range(8):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text:
            break
        text = folded
    return text


def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name (LATIN, CYRILLIC, GREEK...)."""
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else "?"


def _visible(name: str) -> str:
    return "".join(ch for ch in name if unicodedata.category(ch) not in ("Cf", "Cc"))


def display_name(name: str) -> str:
    """How a name is shown: NFKC, trimmed, inner whitespace one space, case kept, any
    invisible or control character dropped (a new name holding one is refused before)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", _visible(name))).strip()


def canonical_name(name: str) -> str:
    """The canonical form of a new principal's name, or InvalidInputError saying why the
    name is refused (see the module docstring)."""
    if not isinstance(name, str):
        raise InvalidInputError("a principal's name must be text", fix="give a name")
    for ch in name:
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Cc", "Co", "Cs", "Cn"):
            kind = "an invisible (format)" if cat == "Cf" else "a control or unassigned"
            raise InvalidInputError(
                f"name {name.encode('unicode_escape').decode()!r} holds {kind} character "
                f"U+{ord(ch):04X}: two names that look the same must be one name",
                fix="type the name again without hidden characters")
    folded = _SPACES.sub(" ", _fold(name)).strip()
    if not folded:
        raise InvalidInputError("a principal's name cannot be empty", fix="give a name")
    if len(folded) > MAX_NAME:
        raise InvalidInputError(f"name longer than {MAX_NAME} characters",
                                fix="choose a shorter name")
    scripts = set()
    for ch in folded:
        cat = unicodedata.category(ch)
        if cat[0] == "L":
            scripts.add(_script(ch))
        elif cat[0] not in "MN" and ch not in _PUNCT:
            raise InvalidInputError(
                f"name {name!r} holds {ch!r} (U+{ord(ch):04X}): a name has letters, digits, "
                "spaces and . - _ @ ' only", fix="choose a name without it")
    if len(scripts) > 1:
        raise InvalidInputError(
            f"name {name!r} mixes scripts ({', '.join(sorted(scripts)).lower()}): "
            "a look-alike of another name", fix="write the name in one script")
    if folded in RESERVED:
        raise InvalidInputError(f"{folded!r} is a system actor of the audit log, not a "
                                "person's name", fix="choose another name")
    return folded


# letters of other scripts that look like a Latin letter (after casefolding: the lower
# case of an upper-case look-alike too, Cyrillic В -> в -> b), from Unicode's
# confusables (UTS #39) for the scripts a mission meets
_LOOKS_LATIN = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "ь": "b", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "н": "h",
    "і": "i", "ј": "j", "к": "k", "ӏ": "l", "м": "m", "п": "n", "о": "o", "р": "p",
    "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "ԝ": "w", "х": "x", "ү": "y", "ѵ": "v",
    "ё": "ë", "ї": "ï",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "m", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ζ": "z", "ϲ": "c",
    "ϳ": "j",
})


def skeleton(canonical: str) -> str:
    """What a canonical name looks like: each letter of another script that looks like
    a Latin one replaced by it (``расо``, all Cyrillic, is ``paco``). Two different
    names with one skeleton are look-alikes, whatever script each is written in."""
    return canonical.translate(_LOOKS_LATIN)


def legacy_key(name: str) -> str:
    """The canonical key of a name written before principals existed (an old token's
    name, an old history's ``who``): folded like canonical_name, with invisible and
    control characters dropped rather than refused. Never empty."""
    folded = _SPACES.sub(" ", _fold(_visible(name))).strip()
    return folded or "legacy-" + hashlib.sha256(name.encode()).hexdigest()[:12]
