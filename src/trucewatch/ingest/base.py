"""The source-adapter interface that built-in and third-party sources implement.

A source turns one raw input (a file's bytes) into a :class:`Batch`: a columnar
table of valid records plus a quarantine of the invalid ones, each with its row
number and reason. Nothing is dropped silently: ``len(batch.records) +
len(batch.quarantine) == batch.n_rows``.

Third parties register a class under the ``trucewatch.sources`` entry point; the
registry (:mod:`trucewatch.ingest.registry`) finds built-in and registered sources alike.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import polars as pl

from trucewatch.errors import InputFileError, OversizeError
from trucewatch.model import contract
from trucewatch.model.enums import SourceKind


@dataclass(frozen=True)
class QuarantineEntry:
    row: int  # 1-based line number in the raw input (the header is line 1)
    reason: str
    raw: str


@dataclass
class Batch:
    """What one source made of one raw input."""

    source: str
    kind: SourceKind
    layout: str
    name: str
    raw: bytes
    sha256: str
    n_rows: int
    records: pl.DataFrame
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    # set when the raw input came in a verified signed envelope: key_id, nonce, signed_at,
    # signer (the key's source); the raw bytes kept are then the whole envelope
    signed: dict[str, str] = field(default_factory=dict)
    # what the batch observed, in the observation contract (model.contract): the only
    # table storage reads its observation rows from; empty for inputs that observe
    # nothing (station inventories, configuration, allegations, raw detections)
    observations: pl.DataFrame = field(default_factory=contract.empty)

    def check_accounting(self) -> None:
        if self.records.height + len(self.quarantine) != self.n_rows:
            raise AssertionError(
                f"{self.name}: {self.records.height} valid + {len(self.quarantine)} quarantined "
                f"!= {self.n_rows} rows"
            )


@runtime_checkable
class SourceAdapter(Protocol):
    name: str
    kind: SourceKind

    def sniff(self, header: list[str]) -> bool:
        """True if this source understands a table with this header."""

    def parse(self, raw: bytes, name: str) -> Batch:
        """Parse raw bytes. Invalid records go to quarantine, never raise per record."""


# what a gzip input may expand to: at most MAX_UNPACKED bytes, and past UNPACK_FLOOR at
# most UNPACK_RATIO times its compressed size (text compresses 5-10 times; a bomb 1000)
MAX_UNPACKED = 2 << 30
UNPACK_FLOOR = 32 << 20
UNPACK_RATIO = 50
GZIP_MAGIC = b"\x1f\x8b"


def unpack(data: bytes, name: str, limit: int | None = None) -> bytes:
    """The bytes a received input stands for: gunzipped when it is gzip, with bounded
    decompression (a gzip bomb is refused after ``limit`` bytes, never expanded whole)."""
    if data[:2] != GZIP_MAGIC:
        return data
    cap = limit if limit is not None else min(MAX_UNPACKED,
                                              max(UNPACK_FLOOR, UNPACK_RATIO * len(data)))
    out = bytearray()
    rest = data
    try:
        while rest[:2] == GZIP_MAGIC:  # gzip members may follow each other
            d = zlib.decompressobj(wbits=31)
            chunk = d.decompress(rest, cap + 1 - len(out))
            out += chunk
            while d.unconsumed_tail and len(out) <= cap:
                out += d.decompress(d.unconsumed_tail, cap + 1 - len(out))
            if len(out) > cap:
                raise OversizeError(
                    f"{name}: decompresses to more than {cap:,} bytes ({len(data):,} "
                    "compressed): refused as a possible decompression bomb", path=name,
                    fix="send the file uncompressed, or split it")
            if not d.eof:
                raise InputFileError(f"{name}: truncated gzip data", path=name,
                                     fix="send the whole file")
            rest = d.unused_data
    except zlib.error as err:
        raise InputFileError(f"{name}: damaged gzip data ({err})", path=name,
                             fix="send the file again, or uncompressed") from err
    return bytes(out)


def read_received(path: Path) -> bytes:
    """A file's bytes exactly as received (the evidentiary copy: gzip stays gzip)."""
    try:
        return path.read_bytes()
    except FileNotFoundError as err:
        raise InputFileError(f"{path}: no such file", path=str(path),
                             fix="check the path") from err
    except IsADirectoryError as err:
        raise InputFileError(f"{path}: is a folder, not a file", path=str(path),
                             fix="give the file's path") from err
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror})", path=str(path),
                             fix="check the file's permissions") from err


def read_raw(path: Path) -> bytes:
    """A file's content, gunzipped (bounded) when it is gzip."""
    return unpack(read_received(path), str(path))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def header_of(raw: bytes) -> list[str]:
    """A CSV's column names; for a JSON document, ``{`` + its declared ``format``."""
    if raw.lstrip()[:1] == b"{":
        m = re.search(rb'"format"\s*:\s*"([^"]{1,100})"', raw[:4096])
        return ["{" + (m.group(1).decode("utf-8", "replace") if m else "")]
    first = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().lstrip("\ufeff")
    return [c.strip().lower() for c in first.split(",")]


# what every "unknown layout" refusal tells the sender to send instead
LAYOUTS_FIX = ("give a FIRMS CSV (VIIRS/MODIS archive, NRT or area-API), a "
               "latitude,longitude,acq_date file, a trucewatch-drone/1 or "
               "trucewatch-allegations/1 document, or a signed envelope of one; see "
               "docs/data-formats.md")
