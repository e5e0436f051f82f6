"""Published products kept in the store, so that a bulletin is renderable from the store
alone (``trucewatch report --store S --date D``), byte for byte, with no re-ingest and no
re-computation.

When a cycle publishes a product (:meth:`ProductStore.publish_product` records its name,
kind, date, audience and SHA-256), :func:`archive_product` also keeps its bytes in the
store through the normal intake, as a configuration input of source ``product``
(content-addressed, compressed, in the hash-chained log). :func:`restore` writes a day's
products back out from there, after checking each one's SHA-256 against the published
record: a product is immutable once published, and a later revision (``.rev2``...) is a
product of its own. A store written before products were archived falls back to the
file at the recorded path, if it still has the recorded SHA-256 (and archives it then).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from trucewatch.errors import IntegrityError, NotFoundError
from trucewatch.ingest.base import unpack
from trucewatch.intake import receive
from trucewatch.intake.sources import ConfigSource
from trucewatch.storage.protocols import ArchiveStore, EvidenceStore, ProductStore

SOURCE = "product"
# ``.rev2.pdf``, and a translation's ``.rev2.uk.pdf`` (its family: ``...public.uk.pdf``)
_REV = re.compile(r"\.rev(\d+)(?:\.[a-z]{2})?\.[a-z]+$")


def revision_of(name: str) -> int:
    """1 for a first publication, N for ``...revN.ext`` (and ``...revN.LANG.ext``)."""
    m = _REV.search(name)
    return int(m.group(1)) if m else 1


def family(name: str) -> str:
    """A product's name without its revision: ``bulletin-D-public.rev2.pdf`` ->
    ``bulletin-D-public.pdf``."""
    return _REV.sub(lambda m: m.group(0)[len(f".rev{m.group(1)}"):], name)


def archive_product(store: EvidenceStore, path: Path, actor: str = "pipeline") -> None:
    """Keep a published product's bytes in the store (idempotent: the same bytes are
    stored once)."""
    receive(store, Path(path).read_bytes(), Path(path).name, ConfigSource(SOURCE),
            actor=actor)


@dataclass(frozen=True)
class Restored:
    path: Path
    product: dict[str, Any]
    from_store: bool  # False: read from the recorded file (an older store)


def _stored_bytes(store: EvidenceStore) -> dict[str, bytes]:
    """Archived product bytes by SHA-256."""
    out: dict[str, bytes] = {}
    for b in store.inputs(SOURCE):
        sha = str(b["raw_sha256"])
        out.setdefault(sha, unpack(store.raw_input(sha), str(b["name"])))
    return out


def products_of(store: ProductStore, day: date, revision: int | None = None,
                audience: str | None = None) -> list[dict[str, Any]]:
    """The published products of ``day``: each one's latest revision (or those of
    revision ``revision``)."""
    mine = [p for p in store.products() if p["report_date"] == day.isoformat()
            and (audience is None or p["audience"] == audience)]
    if not mine:
        days = sorted({str(p["report_date"]) for p in store.products()})
        raise NotFoundError(f"no product published for {day.isoformat()}",
                            fix="published days: " + (", ".join(days[-10:]) or "none yet; "
                                                      "run a cycle (`trucewatch run`)"))
    revs = sorted({revision_of(str(p["name"])) for p in mine})
    if revision is not None:
        if revision not in revs:
            raise NotFoundError(f"{day.isoformat()} has no revision {revision}",
                                fix=f"revisions published: {', '.join(map(str, revs))}")
        return [p for p in mine if revision_of(str(p["name"])) == revision]
    # each product's latest revision (the clock revises one list without the others)
    latest: dict[str, int] = {}
    for p in mine:
        fam = family(str(p["name"]))
        latest[fam] = max(latest.get(fam, 0), revision_of(str(p["name"])))
    return [p for p in mine if revision_of(str(p["name"])) == latest[family(str(p["name"]))]]


def restore(store: ArchiveStore, day: date, out_dir: Path, revision: int | None = None,
            audience: str | None = None) -> list[Restored]:
    """Write ``day``'s products from the store into ``out_dir``, each checked against
    its published SHA-256; IntegrityError when a product's bytes are not the ones
    published, NotFoundError when none is kept."""
    chosen = products_of(store, day, revision, audience)
    kept = _stored_bytes(store)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for p in chosen:
        sha = str(p["sha256"])
        content = kept.get(sha)
        from_store = content is not None
        if content is None:
            recorded = Path(str(p["path"]))
            if not recorded.is_file():
                raise NotFoundError(
                    f"product {p['name']} is not kept in the store (published before "
                    f"products were archived) and its file {recorded} is gone",
                    fix="restore the file from a backup; products published from now on "
                        "are kept in the store")
            content = recorded.read_bytes()
            if hashlib.sha256(content).hexdigest() != sha:
                raise IntegrityError(
                    f"product {p['name']}: the file {recorded} is not the one published "
                    f"(SHA-256 {sha[:12]}...)", fix="restore it from a backup; a published "
                    "product never changes")
            archive_product(store, recorded, actor="report")
        if hashlib.sha256(content).hexdigest() != sha:
            raise IntegrityError(f"product {p['name']}: stored bytes do not match the "
                                 "published SHA-256", fix="run `trucewatch verify`")
        target = out_dir / str(p["name"])
        target.write_bytes(content)
        done.append(Restored(target, p, from_store))
    return done
