"""State proven by the log (issue 11): every state row is bound into the audit chain.

Each state-changing transaction's log entry carries, in its details, the rows it wrote
or deleted::

    "state":   {table: {key: [before, after]}}         # row hashes, null = absent
    "batches": {table: {batch_id: {"rows": n, "sha256": digest}}}

* ``before``/``after`` are the row's hash when the transaction began and when it logged;
  a replayed, reordered or missing entry shows as a ``before`` that is not what the log
  had for that row.
* The rows an ingest adds to a bulk table (observations, quarantine, allegations) are
  listed the same way when the batch has at most :data:`LIST_MAX` of them in that table;
  a larger batch is bound by one digest: SHA-256 over the concatenated, sorted 32-byte
  hashes of its rows. An ingest whose observation rows were all new hashes them as it
  writes them (:func:`hash_rows`, the same code as for a stored row); one that skipped
  rows already stored reads its rows back to hash them.
* Row hash (:func:`row_hash`): SHA-256 over the canonical JSON (no spaces, UTF-8, as
  the chain's :func:`~trucewatch.integrity.chain.canonical`) of ``[names, values]``: the
  row's non-NULL columns sorted by name, and their values; the derived columns (``rowid``,
  PostGIS's ``geom``, generated from lon/lat) and the evidentiary
  bytes of ``raw_inputs`` are left out (those are checked against their SHA-256), and a
  nullable column added later leaves old rows' hashes as they were. Floats are written
  as Python writes them (shortest round trip), integers as integers, binary values as
  ``{"$hex": ...}``: SQLite and PostgreSQL give the same hash for the same row.
* A migration that changes stored rows logs them as any transaction does (``state``);
  rows of a batch bound by one digest are rebound (``"rebound": {table: {batch_id:
  {"before": old digest, "rows": n, "sha256": new digest}}}``, revision 0008).
* A key is the table's primary key (``incident_id#version`` for incident versions,
  ``nonce#key_id`` for submissions: revision 0003 logs each old ``nonce`` key's row
  moving to its new key, same hash).

:func:`check` replays the log into the expected state (per table: key -> hash and the
entry that wrote it; per large batch: its digest) and compares it with the tables both
ways: a row changed, a row logged but missing, a row present but never logged.

Not bound: ``review_locks`` (transient claims, not evidence), the spatial indexes
(``*_rtree``, derived from bound rows), ``tw_meta`` (the schema version an older release
reads) and ``alembic_version``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from trucewatch.integrity.chain import LogEntry, entry_hash
from trucewatch.storage.schema import DERIVED_COLUMNS, tables

LIST_MAX = 2000  # a bulk batch with more rows than this in one table is bound by a digest
CAP = 10  # differences named per table; the rest are counted
_CHUNK = 500  # keys per IN (...) query


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    bulk: bool = False  # bound per ingest batch (rows carry batch_id)
    skip: tuple[str, ...] = ()  # columns not hashed (besides rowid)


TABLES: tuple[Table, ...] = (
    Table("raw_inputs", ("sha256",), skip=("content",)),
    Table("batches", ("id",)),
    Table("observations", ("id",), bulk=True),
    Table("quarantine", ("id",), bulk=True),
    Table("allegations", ("id",), bulk=True),
    Table("incidents", ("id",)),
    Table("violations", ("id",)),
    Table("incident_versions", ("incident_id", "version")),
    Table("rulings", ("allegation_id",)),
    Table("submissions", ("nonce", "key_id")),  # keyed by nonce alone before 0003
    Table("refused", ("id",)),
    Table("api_tokens", ("token_sha256",)),
    Table("principals", ("id",)),
    Table("coverage", ("id",)),
    Table("products", ("name",)),
    Table("status_changes", ("id",)),
    Table("derived_events", ("id",)),  # revision 0009
    Table("stream_inputs", ("batch_id",)),
    Table("stream_state", ("network",)),
    Table("stream_detections", ("network", "detection_id")),  # revision 0010
)
BY_NAME = {t.name: t for t in TABLES}
NOT_BOUND = ("review_locks", "observations_rtree", "incidents_rtree", "tw_meta",
             "alembic_version")

Key = tuple[Any, ...]


def _bytes(o: object) -> object:
    if isinstance(o, bytes | bytearray | memoryview):
        return {"$hex": bytes(o).hex()}
    raise TypeError(f"cannot hash a {type(o).__name__} column value")


_ENC = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_bytes).encode
# the same encoder, built once (JSONEncoder.encode builds it on every call)
_MAKE = getattr(json.encoder, "c_make_encoder", None)
_STR = getattr(json.encoder, "c_encode_basestring", None)
_C_ENC = _MAKE(None, _bytes, _STR, None, ":", ",", False, False, True) if _MAKE and _STR else None


def key_text(key: Key) -> str:
    return "#".join(str(k) for k in key)


def row_hash(columns: Sequence[str], values: Sequence[Any]) -> bytes:
    """SHA-256 of canonical JSON ``[names, values]``: the non-NULL columns, sorted by name,
    and their values (what a third party recomputes from a table dump)."""
    pairs = sorted((c, v) for c, v in zip(columns, values, strict=True) if v is not None)
    return hashlib.sha256(_ENC([[c for c, _ in pairs], [v for _, v in pairs]]).encode()).digest()


def _hasher(cols: Sequence[str], table: Table
            ) -> Callable[[Sequence[Any]], tuple[Key, bytes, Any]]:
    """(key, row hash, batch_id or None) of a row given as a tuple in ``cols`` order (any
    columns; the derived ones and the table's skipped ones are not hashed)."""
    cols = list(cols)
    order = sorted((c, i) for i, c in enumerate(cols)
                   if c not in DERIVED_COLUMNS and c not in table.skip)
    names = [c for c, _ in order]
    idx = [i for _, i in order]
    direct = idx == list(range(len(cols)))  # select() gives the columns in sorted order
    kidx = [cols.index(k) for k in table.key]
    bidx = cols.index("batch_id") if table.bulk else None
    prefix = "[" + _ENC(names) + ","
    sha, enc = hashlib.sha256, _C_ENC

    pick = (lambda row: row) if direct else itemgetter(*idx)
    key = itemgetter(*kidx) if len(kidx) > 1 else (lambda row: (row[kidx[0]],))

    def one(row: Sequence[Any]) -> tuple[Key, bytes, Any]:
        vals = pick(row)
        if None in vals or enc is None:
            h = row_hash(names, vals)
        else:  # the same text as row_hash, without building the lists
            h = sha((prefix + "".join(enc(vals, 0)) + "]").encode()).digest()
        return (key(row), h, row[bidx] if bidx is not None else None)

    return one


def _hashed(cur: Any, table: Table) -> Iterator[tuple[Key, bytes, Any]]:
    """(key, row hash, batch_id or None) for each row of a result over the table."""
    one = _hasher(list(cur.keys()), table)
    # the DB-API cursor's plain tuples (these columns have no result processing)
    fetch = cur.cursor.fetchmany if getattr(cur, "cursor", None) is not None else cur.fetchmany
    while True:
        chunk = fetch(20000)
        if not chunk:
            cur.close()
            return
        yield from map(one, chunk)


def hash_rows(table: str, cols: Sequence[str], rows: Iterable[Sequence[Any]]
              ) -> list[tuple[Key, bytes]]:
    """(key, row hash) of rows about to be written (tuples in ``cols`` order), computed
    exactly as from the stored rows: what an ingest binds without reading its rows back."""
    one = _hasher(cols, BY_NAME[table])
    return [(k, h) for k, h, _ in map(one, rows)]


# floats that polars writes as Python's repr does (shortest round trip): every finite
# value except those below 1e-4 in magnitude, which repr writes as 1e-05 and polars as
# 0.00001 (checked on random and edge values by tests/test_storage.py)
_TINY = 1e-4
_SLICE = 10_000  # rows turned into Python objects at once (hash_frame)


def _json_text(df: Any, cols: Sequence[str]) -> Any:
    """Per row, the canonical JSON text ``[names, values]`` of :func:`row_hash` (the
    non-NULL columns sorted by name), as a polars expression; None where a column's values
    cannot be written exactly as Python's encoder writes them without a Python loop (a
    string with a control character, a float that is not finite or below 1e-4 in
    magnitude, a type other than text, integer or float)."""
    import polars as pl

    order = sorted(cols)
    kinds = {c: ("text" if df.schema[c] == pl.String else "int" if df.schema[c].is_integer()
                 else "float" if df.schema[c].is_float() else None) for c in order}
    if None in kinds.values():
        return None
    # what each column holds, in one pass over the table: a value polars cannot write as
    # Python does (a control character; a float not finite, or tiny), quotes, backslashes
    checks: list[Any] = []
    for k, c in enumerate(order):
        col = pl.col(c)
        if kinds[c] == "text":
            checks += [col.str.contains(r"[\x00-\x1f]").any().alias(f"bad{k}"),
                       col.str.contains('"', literal=True).any().alias(f"q{k}"),
                       col.str.contains("\\", literal=True).any().alias(f"s{k}")]
        elif kinds[c] == "float":
            a = col.cast(pl.Float64).abs()
            checks.append((~col.is_finite() | ((a < _TINY) & (a > 0))).any().alias(f"bad{k}"))
        checks.append(col.null_count().alias(f"n{k}"))
    seen = df.select(checks).row(0, named=True)
    if any(v for name, v in seen.items() if name.startswith("bad")):
        return None
    names, values = [], []
    for k, c in enumerate(order):
        col = pl.col(c)
        if kinds[c] == "text":
            if seen[f"s{k}"]:
                col = col.str.replace_all("\\", "\\\\", literal=True)
            if seen[f"q{k}"]:
                col = col.str.replace_all('"', '\\"', literal=True)
            text = pl.concat_str(pl.lit('"'), col, pl.lit('"'))
        else:
            text = col.cast(pl.Float64 if kinds[c] == "float" else pl.Int64).cast(pl.String)
        name = pl.lit(f'"{c}"')
        if seen[f"n{k}"]:
            name, text = (pl.when(pl.col(c).is_not_null()).then(name),
                          pl.when(pl.col(c).is_not_null()).then(text))
        names.append(name)
        values.append(text)
    # a NULL column is left out of both lists, its separator with it
    return pl.concat_str(pl.lit("[["), pl.concat_str(names, separator=",", ignore_nulls=True),
                         pl.lit("],["), pl.concat_str(values, separator=",", ignore_nulls=True),
                         pl.lit("]]"))


def hash_frame(table: str, df: Any) -> list[tuple[Key, bytes]]:
    """:func:`hash_rows` of a polars table's rows (its columns: the row's columns), with the
    JSON texts written by polars and only SHA-256 run per row in Python; the same result
    as :func:`hash_rows`, which it falls back to when a value cannot be written so."""
    import polars as pl

    t = BY_NAME[table]
    cols = [c for c in df.columns if c not in DERIVED_COLUMNS and c not in t.skip]
    text = _json_text(df, cols)
    if text is None:
        return hash_rows(table, df.columns, df.rows())
    sha = hashlib.sha256
    texts = df.select(*t.key, text.cast(pl.Binary).alias("_json"))
    out: list[tuple[Key, bytes]] = []
    # in slices: a service's other threads (its event loop) get the interpreter between
    # them, as they did between the rows of hash_rows' loop
    for k in range(0, texts.height, _SLICE):
        part = texts.slice(k, _SLICE)
        keys = part.select(*t.key).rows()
        out += [(key, sha(b).digest()) for key, b in
                zip(keys, part["_json"].to_list(), strict=True)]
    return out


def _table(conn: sa.Connection, name: str) -> sa.Table:
    return tables(conn.dialect.name).tables[name]


def select(conn: sa.Connection, table: Table, present: set[str] | None = None
           ) -> sa.Select[Any]:
    """``SELECT <columns> FROM table``: the hashed columns in sorted order (the bytes of
    an evidentiary copy are not read to be skipped). ``present``: only these of the
    specification's columns (a migration reading a table before a later revision added a
    nullable column: an absent column hashes as NULL does, so the hash is the same)."""
    t = _table(conn, table.name)
    cols = sorted(c.name for c in t.columns
                  if c.name not in DERIVED_COLUMNS and c.name not in table.skip
                  and (present is None or c.name in present))
    return sa.select(*(t.c[c] for c in cols))


def row_hashes(conn: sa.Connection, table: Table, keys: Iterable[Key] = (),
               where: Any = None, lock: bool = False, present: set[str] | None = None
               ) -> dict[Key, bytes]:
    """Hashes of the rows with these keys (or matching the clause ``where``), by key."""
    out: dict[Key, bytes] = {}
    stmt = select(conn, table, present)
    if lock:
        stmt = stmt.with_for_update()
    if where is not None:
        return {k: h for k, h, _ in _hashed(conn.execute(stmt.where(where)), table)}
    wanted = list(dict.fromkeys(keys))
    first = _table(conn, table.name).c[table.key[0]]
    for k in range(0, len(wanted), _CHUNK):
        part = wanted[k:k + _CHUNK]
        firsts = list(dict.fromkeys(x[0] for x in part))
        found = {kk: h for kk, h, _ in _hashed(conn.execute(stmt.where(first.in_(firsts))),
                                               table)}
        out.update({x: found[x] for x in part if x in found})
    return out


@dataclass
class Pending:
    """What the open transaction has bound: each row's hash when first bound (before it
    was written), and the ingest batches whose bulk rows are bound when it logs."""

    rows: dict[str, dict[Key, bytes | None]] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)
    # (table, batch_id) -> (key, hash) of every row the batch added to that bulk table,
    # computed as they were written (hash_rows): details() then reads none of them back
    written: dict[tuple[str, str], list[tuple[Key, bytes]]] = field(default_factory=dict)

    def bind(self, db: sa.Connection, table: str, keys: Iterable[Key], new: bool = False,
             lock: bool = False) -> None:
        t = BY_NAME[table]
        seen = self.rows.setdefault(table, {})
        fresh = [k for k in dict.fromkeys(keys) if k not in seen]
        if not fresh:
            return
        before = {} if new else row_hashes(db, t, fresh, lock=lock)
        for k in fresh:
            seen[k] = before.get(k)

    def bind_where(self, db: sa.Connection, table: str, where: Any,
                   lock: bool = False) -> list[Key]:
        seen = self.rows.setdefault(table, {})
        found = row_hashes(db, BY_NAME[table], where=where, lock=lock)
        for k, h in found.items():
            seen.setdefault(k, h)
        return list(found)

    def details(self, db: sa.Connection, present: dict[str, set[str]] | None = None
                ) -> dict[str, Any]:
        """The ``state`` and ``batches`` of the log entry that ends the transaction
        (``present``: the columns each table has, when a migration reads a table that a
        later revision changes; see :func:`select`)."""
        cols = present or {}
        state: dict[str, dict[str, list[str | None]]] = {}
        for table, before in self.rows.items():
            after = row_hashes(db, BY_NAME[table], before, present=cols.get(table))
            rows = {key_text(k): [_hex(b), _hex(after.get(k))] for k, b in before.items()
                    if b is not None or k in after}
            if rows:
                state[table] = rows
        digests: dict[str, dict[str, dict[str, Any]]] = {}
        for bid in dict.fromkeys(self.batches):
            for t in TABLES:
                if not t.bulk or (present is not None and t.name not in present):
                    continue  # (a table a later revision adds: not there in a migration)
                known = self.written.get((t.name, bid))
                added: Iterable[tuple[Key, bytes, Any]]
                if known is not None:
                    n = len(known)
                    added = ((k, h, None) for k, h in known)
                else:
                    bcol = _table(db, t.name).c.batch_id
                    n = db.execute(sa.select(sa.func.count()).where(bcol == bid)).scalar_one()
                    added = _hashed(db.execute(select(db, t, cols.get(t.name))
                                               .where(bcol == bid)), t)
                if not n:
                    continue
                if n <= LIST_MAX:
                    state.setdefault(t.name, {}).update(
                        {key_text(k): [None, h.hex()] for k, h, _ in sorted(added)})
                else:
                    hashes = [h for _, h, _ in added]
                    digests.setdefault(t.name, {})[bid] = {"rows": len(hashes),
                                                           "sha256": digest(hashes)}
        self.rows, self.batches, self.written = {}, [], {}
        out: dict[str, Any] = {}
        if state:
            out["state"] = state
        if digests:
            out["batches"] = digests
        return out


def _hex(h: bytes | None) -> str | None:
    return h.hex() if h is not None else None


def digest(hashes: Iterable[bytes]) -> str:
    return hashlib.sha256(b"".join(sorted(hashes))).hexdigest()


def adopt(db: sa.Connection) -> dict[str, Any]:
    """Bind every row of a store written before rows were bound (the upgrade to schema 8):
    the details of one ``bind_state`` entry, empty when there is nothing to bind. Rows are
    proven from that entry on, not before it."""
    p = Pending()
    inspector = sa.inspect(db)
    # a table of a later revision (0009's derived_events...) is not there yet: it is
    # created empty after this step and bound from its first row
    exists = set(inspector.get_table_names())
    tables = [t for t in TABLES if t.name in exists]
    present = {t.name: {c["name"] for c in inspector.get_columns(t.name)} for t in tables}
    for t in tables:
        if t.bulk:
            bcol = _table(db, t.name).c.batch_id
            p.batches += [r[0] for r in db.execute(sa.select(bcol).distinct())]
        else:
            p.rows[t.name] = {k: None for k, _, _ in
                              _hashed(db.execute(select(db, t, present[t.name])), t)}
    return p.details(db, present)


# ---------------------------------------------------------------- verification
@dataclass
class _Expected:
    rows: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    batches: dict[str, dict[str, tuple[int, str, int, str]]] = field(default_factory=dict)


def _replay(log: Iterable[LogEntry], problems: list[tuple[float, str, str]]) -> _Expected:
    exp = _Expected()
    bodies: dict[str, int] = {}
    for e in log:
        body = entry_hash({"at": e.at, "actor": e.actor, "action": e.action,
                           "subject": e.subject, "details": e.details})
        if body in bodies:
            problems.append((e.seq, "", f"entry {e.seq} ({e.action} {e.subject}) repeats "
                             f"entry {bodies[body]}: a replayed entry"))
        bodies.setdefault(body, e.seq)
        try:
            d = json.loads(e.details)
        except ValueError:
            continue  # the chain check names it
        if not isinstance(d, dict):
            continue
        for table, rows in (d.get("state") or {}).items():
            have = exp.rows.setdefault(table, {})
            for key, pair in rows.items():
                before, after = pair
                cur = have.get(key)
                if (cur[0] if cur else None) != before:
                    if cur is None:
                        how = "present, though no earlier entry wrote it"
                    elif before is None:
                        how = f"absent, though entry {cur[1]} wrote it"
                    else:
                        how = f"changed since entry {cur[1]} wrote it"
                    problems.append((e.seq, table, f"entry {e.seq} ({e.action} {e.subject}) "
                                     f"found {table} row {key} {how}: changed outside the "
                                     "log, or log entries replayed or removed"))
                if after is None:
                    have.pop(key, None)
                else:
                    have[key] = (after, e.seq)
        for table, per in (d.get("batches") or {}).items():
            have_b = exp.batches.setdefault(table, {})
            for bid, info in per.items():
                if bid in have_b:
                    problems.append((e.seq, table, f"entry {e.seq} ({e.action} {e.subject}) "
                                     f"binds batch {bid} of {table} again (first at entry "
                                     f"{have_b[bid][2]}): a replayed entry"))
                have_b[bid] = (int(info["rows"]), str(info["sha256"]), e.seq,
                               str(d.get("name") or bid))
        # a migration that changed rows of a batch bound by one digest (revision 0008)
        # rebinds it: the digest it found, and the new one
        for table, per in (d.get("rebound") or {}).items():
            have_b = exp.batches.setdefault(table, {})
            for bid, info in per.items():
                cur_b = have_b.get(bid)
                if cur_b is None or cur_b[1] != info.get("before"):
                    problems.append((e.seq, table, f"entry {e.seq} ({e.action} {e.subject}) "
                                     f"rebinds batch {bid} of {table} from a digest the log "
                                     "did not have: changed outside the log, or log entries "
                                     "replayed or removed"))
                have_b[bid] = (int(info["rows"]), str(info["sha256"]), e.seq,
                               cur_b[3] if cur_b else bid)
    return exp


def check(db: sa.Connection, log: Sequence[LogEntry], cap: int = CAP) -> list[str]:
    """Replay the log and compare the expected state with the tables; the differences,
    earliest log entry first (rows never logged last), at most ``cap`` named per table."""
    found: list[tuple[float, str, str]] = []
    exp = _replay(log, found)
    never = float("inf")
    for t in TABLES:
        want = exp.rows.get(t.name, {})
        seen: set[str] = set()
        big = exp.batches.get(t.name, {})
        per_batch: dict[str, list[bytes]] = {b: [] for b in big}
        for key, h, bid in _hashed(db.execute(select(db, t)), t):
            if bid is not None and bid in per_batch:
                per_batch[bid].append(h)
                continue
            k = key_text(key)
            seen.add(k)
            w = want.get(k)
            if w is None:
                found.append((never, t.name, f"{t.name} row {k} is in the store but no log "
                              "entry wrote it"))
            elif w[0] != h.hex():
                found.append((w[1], t.name, f"{t.name} row {k} differs from the row logged "
                              f"at entry {w[1]}"))
        for k, (_, seq) in want.items():
            if k not in seen:
                found.append((seq, t.name, f"{t.name} row {k} logged at entry {seq} is "
                              "missing"))
        for bid, (n, dig, seq, name) in big.items():
            got = per_batch[bid]
            if len(got) != n or digest(got) != dig:
                found.append((seq, t.name, f"{t.name} of batch {bid} ({name}) differ from "
                              f"the {n} rows logged at entry {seq}: {len(got)} rows found"
                              + ("" if len(got) != n else ", some changed")))
    found.sort(key=lambda p: (p[0], p[1], p[2]))
    out: list[str] = []
    named: dict[str, int] = {}
    more: dict[str, int] = {}
    for _, table, text in found:
        if named.get(table, 0) >= cap:
            more[table] = more.get(table, 0) + 1
            continue
        named[table] = named.get(table, 0) + 1
        out.append(text)
    out += [f"... and {n} more differences in {table}" for table, n in more.items()]
    return out
