"""What ``verify`` checks beyond the chain and the bound rows (storage.binding): the
parts of a store the log does not bind row by row, each against what it derives from.

* **Spatial indexes** (SQLite's R*Trees): every observation and incident has exactly one
  box, at its point (the R*Tree keeps 32-bit floats, rounded outwards), and no box is
  without its row: an index edited apart from its table makes box queries lie.
* **Review locks** (transient, not evidence): every lock is the last claim the log holds
  for its incident, by the same principal, until the same time.
* **Schema**: the Alembic revision is this release's head, the version older releases
  read (PRAGMA user_version / tw_meta) is the one this release writes, and every table
  and column of the specification is there.
* **Append-only triggers**: the triggers that refuse UPDATE and DELETE on ``audit_log``
  and ``raw_inputs`` are there, unchanged and enabled (SQLite: each trigger's statement,
  whitespace aside; PostgreSQL: each trigger before UPDATE OR DELETE for each row,
  enabled, calling ``tw_append_only``, which raises). Without them the evidence could be
  rewritten with no error.
* **Published products**: the file at each product's recorded path has the published
  SHA-256; a product whose file is gone must be archived in the store.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from trucewatch.integrity.chain import LogEntry
from trucewatch.storage.schema import _PG_APPEND_ONLY, _SQLITE_TRIGGERS, SPATIAL, tables

NAMED = 10  # problems named per check, as binding.check names per table
_BOX = 1e-4  # degrees: a point's box is a float32 rounding of it, far narrower than this


def incomplete(problems: list[str]) -> bool:
    """Whether :func:`schema` found a table, column or index missing (then the row checks
    cannot run, and verify names the schema alone)."""
    return any("missing from the schema" in p or " lacks column" in p for p in problems)


def spatial(conn: sa.Connection) -> list[str]:
    if conn.dialect.name == "postgresql":
        return []  # PostGIS: geom is generated from lon/lat and cannot be written
    problems: list[str] = []
    for t in SPATIAL:
        r = f"{t}_rtree"
        q = conn.exec_driver_sql
        for (key,) in q(f"SELECT t.id FROM {t} t LEFT JOIN {r} r ON r.rid = t.rowid "
                        f"WHERE r.rid IS NULL ORDER BY t.rowid LIMIT {NAMED}"):
            problems.append(f"spatial index {r} has no box for {t} row {key}: box "
                            "queries miss it")
        for (rid,) in q(f"SELECT r.rid FROM {r} r LEFT JOIN {t} t ON t.rowid = r.rid "
                        f"WHERE t.rowid IS NULL ORDER BY r.rid LIMIT {NAMED}"):
            problems.append(f"spatial index {r} has a box (rid {rid}) for no {t} row")
        for key, lon, lat in q(
                f"SELECT t.id, t.lon, t.lat FROM {t} t JOIN {r} r ON r.rid = t.rowid WHERE "
                "NOT (r.min_lon <= t.lon AND t.lon <= r.max_lon AND r.min_lat <= t.lat AND "
                f"t.lat <= r.max_lat AND r.max_lon - r.min_lon < {_BOX} AND "
                f"r.max_lat - r.min_lat < {_BOX}) ORDER BY t.rowid LIMIT {NAMED}"):
            problems.append(f"spatial index {r} puts {t} row {key} elsewhere than its "
                            f"point ({lat}, {lon}): the index was edited apart from the row")
    return problems


def _z(text: Any) -> str:
    return str(text).replace("+00:00", "Z")


def locks(conn: sa.Connection, log: list[LogEntry]) -> list[str]:
    claims: dict[str, tuple[int, str, str]] = {}
    for e in log:
        if e.action != "claim":
            continue
        try:
            d = json.loads(e.details)
        except ValueError:
            continue  # the chain check names it
        if isinstance(d, dict):
            claims[e.subject] = (e.seq, str(d.get("principal") or e.actor), _z(d.get("until")))
    problems: list[str] = []
    lk = tables(conn.dialect.name).tables["review_locks"]
    for incident, analyst, expires in conn.execute(
            sa.select(lk.c.incident_id, lk.c.analyst, lk.c.expires_at)
            .order_by(lk.c.incident_id)):
        claim = claims.get(incident)
        if claim is None:
            problems.append(f"review_locks row {incident} (held by {analyst}) has no claim "
                            "in the audit log: a lock written outside the application")
        elif (claim[1], claim[2]) != (analyst, _z(expires)):
            problems.append(f"review_locks row {incident} (held by {analyst} until "
                            f"{_z(expires)}) differs from the claim logged at entry "
                            f"{claim[0]} ({claim[1]} until {claim[2]})")
        if len(problems) >= NAMED:
            break
    return problems


def schema(conn: sa.Connection) -> list[str]:
    from trucewatch.storage import migrations
    from trucewatch.storage.migrations import legacy

    problems: list[str] = []
    rows = [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")] \
        if sa.inspect(conn).has_table("alembic_version") else []
    if rows != [migrations.head()]:
        problems.append(f"schema revision is {', '.join(map(str, rows)) or 'missing'}, not "
                        f"this release's head {migrations.head()}: alembic_version was edited")
    old = legacy.version(conn)
    if old != migrations.GUARD:
        problems.append(f"schema version older releases read is {old}, not "
                        f"{migrations.GUARD}: it was edited (an older release would open "
                        "the store and write past these checks)")
    inspector = sa.inspect(conn)
    have = set(inspector.get_table_names())
    for name, table in tables(conn.dialect.name).tables.items():
        if name not in have:
            problems.append(f"table {name} is missing from the schema")
            continue
        cols = {c["name"] for c in inspector.get_columns(name)}
        missing = [c.name for c in table.columns if c.name not in cols]
        if missing:
            problems.append(f"table {name} lacks column(s) {', '.join(missing)}")
    if conn.dialect.name != "postgresql":
        problems += [f"spatial index {t}_rtree is missing from the schema"
                     for t in SPATIAL if f"{t}_rtree" not in have]
    return problems + append_only(conn)


_TRIGGER = re.compile(r"CREATE TRIGGER (\w+) BEFORE (.+?) ON (\w+)", re.IGNORECASE)
_FIX = "recreate it from storage/schema.py (restore the store from a copy if rows changed)"


def _squeeze(sql: str) -> str:
    return " ".join(str(sql).replace(";", " ").split()).lower()


def _trigger_of(stmt: str) -> tuple[str, str]:
    """The trigger's name and table in a CREATE TRIGGER statement this release writes."""
    m = _TRIGGER.match(stmt)
    assert m is not None
    return m.group(1), m.group(3)


def _gone(name: str, table: str) -> str:
    return (f"append-only trigger {name} on {table} is gone: {table} could be altered "
            f"without an error ({_FIX})")


def append_only(conn: sa.Connection) -> list[str]:
    """The append-only triggers of ``audit_log`` and ``raw_inputs``: each one named that
    is gone, changed or disabled."""
    problems: list[str] = []
    if conn.dialect.name == "postgresql":
        found = {name: (table, int(kind), enabled, func, body)
                 for name, table, kind, enabled, func, body in conn.exec_driver_sql(
                     "SELECT t.tgname, c.relname, t.tgtype, t.tgenabled, p.proname, p.prosrc "
                     "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                     "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal")}
        # tgtype bits: 1 row, 2 before, 8 delete, 16 update
        for stmt in _PG_APPEND_ONLY[1:]:
            name, table = _trigger_of(stmt)
            have = found.get(name)
            if have is None or have[0] != table:
                problems.append(_gone(name, table))
            elif (have[1] & 27) != 27 or have[3] != "tw_append_only" or \
                    "raise exception" not in have[4].lower():
                problems.append(f"append-only trigger {name} on {table} was changed: it "
                                f"no longer refuses every UPDATE and DELETE ({_FIX})")
            elif have[2] == "D":
                problems.append(f"append-only trigger {name} on {table} is disabled "
                                f"(ALTER TABLE {table} ENABLE TRIGGER {name})")
        return problems
    stored = {name: (table, sql) for name, table, sql in conn.exec_driver_sql(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")}
    for stmt in _SQLITE_TRIGGERS:
        name, table = _trigger_of(stmt)
        mine = stored.get(name)
        if mine is None or mine[0] != table:
            problems.append(_gone(name, table))
        elif _squeeze(mine[1]) != _squeeze(stmt):
            problems.append(f"append-only trigger {name} on {table} was changed: it no "
                            f"longer reads as this release writes it ({_FIX})")
    return problems


def products(conn: sa.Connection) -> list[str]:
    md = tables(conn.dialect.name)
    p, raw = md.tables["products"], md.tables["raw_inputs"]
    archived = {r[0] for r in conn.execute(
        sa.select(raw.c.sha256).where(raw.c.sha256.in_(sa.select(p.c.sha256))))}
    problems: list[str] = []
    for name, sha, path in conn.execute(sa.select(p.c.name, p.c.sha256, p.c.path)
                                        .order_by(p.c.published_at, p.c.name)):
        f = Path(str(path))
        try:
            content = f.read_bytes() if path else None
        except FileNotFoundError:
            content = None
        except OSError as err:
            problems.append(f"published product {name}: {f} cannot be read ({err.strerror})")
            continue
        if content is not None and hashlib.sha256(content).hexdigest() != sha:
            problems.append(f"published product {name} at {f} does not match its published "
                            "SHA-256: the file was altered after publication")
        elif content is None and sha not in archived:
            problems.append(f"published product {name}: the file {f} is gone and the store "
                            "holds no archived copy with its SHA-256")
        if len(problems) >= NAMED:
            break
    return problems
