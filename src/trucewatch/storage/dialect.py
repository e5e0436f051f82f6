"""What differs between SQLite and PostgreSQL + PostGIS, in small functions; every query
of the store goes through one code path (SQLAlchemy Core) and calls these where the
dialects part.

* :func:`insert_ignore` / :func:`upsert`: ``INSERT OR IGNORE`` / ``ON CONFLICT``.
* :func:`within_box`: a point table filtered by a box (R*Tree join on SQLite, ``&&``
  on a GiST-indexed geometry in PostGIS, then the row's own lon/lat, edges included);
  :func:`within_distance` (``ST_DWithin`` on geography in PostGIS; the box of the
  circle, then the exact great-circle distance, on SQLite).
* :func:`index_points`: SQLite keeps its R*Tree in step with the rows; PostGIS's geometry
  is a generated column and needs nothing.
* :func:`time_at_or_after` / :func:`time_before` / :func:`as_time`: a stored ISO-8601
  time compared with a time, or ordered, as a time, not as text (``julianday`` on
  SQLite, ``timestamptz`` on PostgreSQL).
* :data:`BEGIN` and :data:`LOCK_ROWS`: how a writing transaction starts, and how rows it
  binds are locked (storage.binding).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from trucewatch.model.times import query_time
from trucewatch.storage.schema import SRID, rtree

# SQLite: take the write lock at once, so that two writers serialise at BEGIN and a
# check made inside the transaction holds until it commits
BEGIN = {"sqlite": "BEGIN IMMEDIATE", "postgresql": "BEGIN"}
LOCK_ROWS = {"sqlite": False, "postgresql": True}  # FOR UPDATE on bound rows

Box = tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat


def insert_ignore(dialect: str, table: sa.Table) -> Any:
    """INSERT that skips a row whose key is taken."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).prefix_with("OR IGNORE")


def upsert(dialect: str, table: sa.Table) -> Any:
    """INSERT that replaces the row whose primary key is taken."""
    ins = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))
    keys = [c.name for c in table.primary_key.columns]
    return ins.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: ins.excluded[c.name] for c in table.columns
              if c.name not in keys and not c.computed})


def within_box(dialect: str, stmt: sa.Select[Any], table: sa.Table, box: Box
               ) -> sa.Select[Any]:
    """``stmt`` (selecting from ``table``) kept to the rows whose point lies in ``box``
    (edges included)."""
    min_lon, min_lat, max_lon, max_lat = box
    if dialect == "postgresql":
        # the GiST index finds the points whose (float4, outward-rounded) boxes meet the
        # envelope; the row's lon/lat decides, edges included (ST_Intersects misses a
        # point on the edge of a degenerate box, such as a single point)
        env = sa.func.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, SRID)
        return stmt.where(table.c.geom.op("&&")(env),
                          table.c.lon.between(min_lon, max_lon),
                          table.c.lat.between(min_lat, max_lat))
    r = rtree(table.name)
    # the R*Tree keeps 32-bit floats, rounded outwards: a point on the box's edge can
    # have a box that pokes out of it. So the tree finds the boxes that meet the query
    # box, and the row's own lon/lat decides (edges included)
    return stmt.join_from(table, r, r.c.rid == sa.literal_column(f"{table.name}.rowid")).where(
        r.c.max_lon >= min_lon, r.c.min_lon <= max_lon, r.c.max_lat >= min_lat,
        r.c.min_lat <= max_lat, table.c.lon.between(min_lon, max_lon),
        table.c.lat.between(min_lat, max_lat))


_EARTH_M = 6_371_008.8


def within_distance(dialect: str, stmt: sa.Select[Any], table: sa.Table, lon: float,
                    lat: float, metres: float) -> sa.Select[Any]:
    """``stmt`` kept to the rows within ``metres`` of (lon, lat), great-circle."""
    if dialect == "postgresql":
        from geoalchemy2 import Geography

        here = sa.func.ST_SetSRID(sa.func.ST_MakePoint(lon, lat), SRID)
        return stmt.where(sa.func.ST_DWithin(sa.cast(table.c.geom, Geography(srid=SRID)),
                                             sa.cast(here, Geography(srid=SRID)), metres))
    # the circle's bounding box through the R*Tree, then the haversine distance
    dlat = math.degrees(metres / _EARTH_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    boxed = within_box(dialect, stmt, table, (lon - dlon, lat - dlat, lon + dlon, lat + dlat))
    return boxed.where(great_circle_within(table.c.lon, table.c.lat, lon, lat, metres))


def great_circle_within(lon_col: sa.ColumnElement[Any], lat_col: sa.ColumnElement[Any],
                        lon: float, lat: float, metres: float) -> sa.ColumnElement[bool]:
    """The haversine test: the point (``lon_col``, ``lat_col``) lies within ``metres`` of
    (lon, lat). Plain SQL functions both dialects have (a table without a spatial index,
    such as derived_events, uses it alone)."""
    phi, lam = math.radians(lat), math.radians(lon)
    rlat, rlon = sa.func.radians(lat_col), sa.func.radians(lon_col)
    hav = (sa.func.pow(sa.func.sin((rlat - phi) / 2), 2) + math.cos(phi) * sa.func.cos(rlat)
           * sa.func.pow(sa.func.sin((rlon - lam) / 2), 2))
    return 2 * _EARTH_M * sa.func.asin(sa.func.sqrt(hav)) <= metres


# Times are stored as ISO-8601 text (the hash chain binds the text): to the second or the
# millisecond with ``Z`` (observations), or ``isoformat()`` with an offset (incidents).
# Text order is not time order across those forms ("10:00:00.500Z" sorts before
# "10:00:00Z"), so the exact test parses the text as a time. Before it, a text range on
# the column keeps the index in use: the first 19 characters (to the second) of any of
# those forms lie within a day of the instant, whatever its offset (-12 h to +14 h), and
# a text compares with a 19-character one by those first characters.
_TEXT_SLACK = timedelta(days=1, seconds=1)


def _utc(t: datetime | str) -> datetime:
    return query_time(t)


def _ceil_ms(t: datetime) -> datetime:
    """``t`` rounded up to the millisecond (SQLite's date functions keep milliseconds:
    with stored times to the millisecond, ``x >= t`` is ``x >= ceil(t)``, and so is
    ``x < t``)."""
    us = t.microsecond % 1000
    return t if not us else t + timedelta(microseconds=1000 - us)


def as_time(dialect: str, column: Any) -> Any:
    """Stored ISO-8601 text as a time the database orders by (``julianday`` on SQLite, to
    the millisecond; ``timestamptz`` on PostgreSQL)."""
    if dialect == "postgresql":
        return sa.cast(column, sa.TIMESTAMP(timezone=True))
    return sa.func.julianday(column)


def _bound(dialect: str, t: datetime) -> Any:
    if dialect == "postgresql":
        return sa.literal(t, sa.TIMESTAMP(timezone=True))
    with contextlib.suppress(OverflowError):  # within a millisecond of year 9999's end
        t = _ceil_ms(t)
    return sa.func.julianday(t.replace(tzinfo=None).isoformat(" ", "milliseconds"))


def _shifted(t: datetime, delta: timedelta) -> str:
    """``t + delta`` to the second, as the first 19 characters of a stored time."""
    try:
        return (t + delta).replace(tzinfo=None, microsecond=0).isoformat()
    except OverflowError:  # past year 1 or 9999: every stored time is on this side
        return "0000" if delta < timedelta(0) else "A"


def time_at_or_after(dialect: str, column: Any, t: datetime | str) -> Any:
    """``column`` (stored ISO-8601 text) at or after ``t`` (aware, or ISO text with an
    offset: model.times.query_time), as times."""
    t = _utc(t)
    return sa.and_(column >= _shifted(t, -_TEXT_SLACK),
                   as_time(dialect, column) >= _bound(dialect, t))


def time_before(dialect: str, column: Any, t: datetime | str) -> Any:
    """``column`` (stored ISO-8601 text) before ``t`` (aware, or ISO text with an offset),
    as times."""
    t = _utc(t)
    return sa.and_(column < _shifted(t, _TEXT_SLACK),
                   as_time(dialect, column) < _bound(dialect, t))


def index_points(dialect: str, conn: sa.Connection, table: sa.Table, where: Any) -> None:
    """Put the rows of ``table`` matching ``where`` into SQLite's R*Tree (PostGIS: the
    generated geometry is its own index entry)."""
    if dialect == "postgresql":
        return
    r = rtree(table.name)
    rowid: Any = sa.literal_column("rowid")
    conn.execute(r.insert().from_select(
        ["rid", "min_lon", "max_lon", "min_lat", "max_lat"],
        sa.select(rowid, table.c.lon, table.c.lon, table.c.lat, table.c.lat).where(where)))


def move_point(dialect: str, conn: sa.Connection, table: sa.Table, key: Any, lon: float,
               lat: float) -> None:
    """A row's point changed: SQLite moves its R*Tree box (PostGIS regenerates geom)."""
    if dialect == "postgresql":
        return
    r = rtree(table.name)
    rowid: Any = sa.select(sa.literal_column("rowid")).select_from(table).where(key)
    conn.execute(r.update().where(r.c.rid == rowid.scalar_subquery()).values(
        min_lon=lon, max_lon=lon, min_lat=lat, max_lat=lat))


def unindex_points(dialect: str, conn: sa.Connection, table: sa.Table, where: Any) -> None:
    """Drop the R*Tree boxes of the rows about to be deleted (SQLite)."""
    if dialect == "postgresql":
        return
    r = rtree(table.name)
    rowids: Any = sa.select(sa.literal_column("rowid")).select_from(table).where(where)
    conn.execute(r.delete().where(r.c.rid.in_(rowids)))


# SQLite page cache, KiB, while a large batch is written (storage.database keeps 64 MiB
# otherwise). A batch's rows go into four B-trees keyed at random (the id, the date, the
# kind and time) and the R*Tree: in a store of millions of rows they touch more distinct
# pages than 64 MiB holds, and SQLite then spills dirty pages to the WAL mid-transaction
# and rereads pages it just evicted. The cache only fills as pages are touched, and is
# cut back (its pages freed) when the batch is done.
BULK_CACHE_KIB = 1 << 20
BULK_ROWS = 10_000  # batches of at least this many rows get the larger cache


@contextlib.contextmanager
def bulk_cache(dialect: str, conn: sa.Connection, rows: int) -> Iterator[None]:
    """Around one large batch's writes: SQLite's page cache raised to
    :data:`BULK_CACHE_KIB`, then put back (PostgreSQL: nothing; its shared buffers are the
    server's)."""
    if dialect == "postgresql" or rows < BULK_ROWS:
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={before}")


def bulk_insert_ignore(dialect: str, conn: sa.Connection, table: sa.Table,
                       rows: pl.DataFrame) -> int:
    """Insert a table's rows (``rows``: a polars table whose columns are the table's),
    skipping those whose key is taken; how many were new. SQLite: one prepared
    ``INSERT OR IGNORE`` run over the rows (executemany). PostgreSQL: ``COPY`` of the rows
    as CSV written by polars (a NULL is an empty field, an empty text ``""``; floats in
    their shortest exact form) into a temporary table, then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``."""
    if not rows.height:
        return 0
    columns = rows.columns
    if dialect != "postgresql":
        stmt = insert_ignore(dialect, table).values({c: sa.bindparam(c) for c in columns})
        sql = str(stmt.compile(dialect=conn.dialect))
        return int(conn.exec_driver_sql(sql, rows.rows()).rowcount)
    raw: Any = conn.connection.driver_connection
    cols = ", ".join(columns)
    pk = [c.name for c in table.primary_key.columns]
    text = rows.write_csv(include_header=False, null_value="")
    keys = rows[pk[0]] if len(pk) == 1 and rows.schema[pk[0]] == pl.String else None
    # the keys as one text, split in the database (psycopg would quote each of a list)
    if keys is not None and not keys.str.contains("\n", literal=True).any() and not (
            conn.exec_driver_sql(
                f"SELECT 1 FROM {table.name} WHERE {pk[0]} = ANY(string_to_array("
                "%(keys)s, E'\\n')) LIMIT 1", {"keys": "\n".join(keys.to_list())}).first()):
        # no key is taken: COPY straight into the table (a savepoint catches another
        # writer that took one of these keys meanwhile, and the rows go the long way)
        conn.exec_driver_sql("SAVEPOINT tw_copy")
        try:
            with raw.cursor() as cur, cur.copy(
                    f"COPY {table.name} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(text)
        except Exception as err:
            if not is_unique_violation(err):
                raise
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT tw_copy")
        else:
            conn.exec_driver_sql("RELEASE SAVEPOINT tw_copy")
            return rows.height
    tmp = f"tw_load_{table.name}"
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {table.name}) "
                         "ON COMMIT DELETE ROWS")
    with raw.cursor() as cur, cur.copy(f"COPY {tmp} ({cols}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(text)
    n = conn.exec_driver_sql(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {tmp} "
                             f"ON CONFLICT ({', '.join(pk)}) DO NOTHING").rowcount
    conn.exec_driver_sql(f"TRUNCATE {tmp}")
    return int(n)


def is_unique_violation(err: BaseException) -> bool:
    """A uniqueness conflict, from either database (through SQLAlchemy or not)."""
    orig = getattr(err, "orig", err)
    name = type(orig).__name__
    return name == "UniqueViolation" or (name == "IntegrityError" and (
        "UNIQUE" in str(orig) or "PRIMARY KEY" in str(orig)))

