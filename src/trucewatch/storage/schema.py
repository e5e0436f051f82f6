"""The store's tables, written once (SQLAlchemy Core); each dialect's DDL is generated
from this specification.

    tables("sqlite")      # embedded default: R*Tree virtual tables for the boxes
    tables("postgresql")  # PostGIS: a geometry(Point, 4326) column with a GiST index

What differs by dialect is decided here and nowhere else:

* **Spatial index.** SQLite keeps an R*Tree (``observations_rtree``, ``incidents_rtree``:
  ``rid`` = the row's ``rowid``), created beside its table. PostgreSQL gets a real
  ``geom geometry(Point, 4326)`` column on ``observations`` and ``incidents``, generated
  from ``lon``/``lat`` (it cannot drift from them) and indexed with GiST; box and
  distance filters run in the database (``&&``, ``ST_DWithin``).
* **Append-only evidence.** Triggers refuse UPDATE/DELETE on ``audit_log`` and
  ``raw_inputs``: SQLite's ``RAISE(ABORT)`` triggers, a plpgsql function on PostgreSQL.
* **Types.** ``REAL``/``INTEGER`` on SQLite (``INTEGER PRIMARY KEY`` is the rowid),
  ``DOUBLE PRECISION``/``BIGINT`` with identity keys on PostgreSQL; ``BLOB``/``BYTEA``.
* **The sector index** is on a JSON expression (``json_extract`` / ``->>``).

Times are ISO-8601 UTC text, as the hash chain binds them (``storage.binding``: a row's
hash is over its values, so a column type must give back what was written).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

# one type per kind of value, rendered per dialect
TEXT = sa.Text()
REAL: Any = sa.Double().with_variant(sqlite.REAL(), "sqlite")
INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BLOB = sa.LargeBinary()

SPATIAL = ("observations", "incidents")  # the tables with a point (lon, lat) indexed
DERIVED_COLUMNS = ("rowid", "geom")  # derived from other columns: never hashed
SRID = 4326

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_append_only_u BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_append_only_d BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER raw_inputs_evidentiary_u BEFORE UPDATE ON raw_inputs "
    "BEGIN SELECT RAISE(ABORT, 'raw inputs are evidentiary copies: never altered'); END",
    "CREATE TRIGGER raw_inputs_evidentiary_d BEFORE DELETE ON raw_inputs "
    "BEGIN SELECT RAISE(ABORT, 'raw inputs are evidentiary copies: never deleted'); END",
)
_PG_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION tw_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION '%% is append-only: evidence and the audit log are never altered', "
    "TG_TABLE_NAME; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION tw_append_only()",
    "CREATE TRIGGER raw_inputs_evidentiary BEFORE UPDATE OR DELETE ON raw_inputs "
    "FOR EACH ROW EXECUTE FUNCTION tw_append_only()",
)


def rtree_ddl(table: str) -> str:
    """SQLite's R*Tree beside ``table`` (one box per row; ``rid`` is its rowid)."""
    return (f"CREATE VIRTUAL TABLE {table}_rtree USING rtree(rid, min_lon, max_lon, "
            "min_lat, max_lat)")


def geometry_column() -> sa.Column[Any]:
    """PostGIS: the row's point, generated from lon/lat (never written, never drifts)."""
    from geoalchemy2 import Geometry

    return sa.Column("geom", Geometry("POINT", srid=SRID, spatial_index=False),
                     sa.Computed(f"ST_SetSRID(ST_MakePoint(lon, lat), {SRID})",
                                 persisted=True), nullable=True)


def _key(name: str = "id") -> sa.Column[int]:
    """An integer key the database assigns (SQLite rowid; PostgreSQL identity)."""
    return sa.Column(name, INT, sa.Identity(), primary_key=True)


@cache
def tables(dialect: str) -> sa.MetaData:
    """Every table and index of the store, for ``dialect`` (``sqlite`` or ``postgresql``).
    The spatial parts and the triggers are the only differences."""
    pg = dialect == "postgresql"
    md = sa.MetaData()

    def t(name: str, *cols: Any) -> sa.Table:
        return sa.Table(name, md, *cols)

    def c(name: str, typ: Any, *args: Any, null: bool = False, **kw: Any) -> sa.Column[Any]:
        return sa.Column(name, typ, *args, nullable=null, **kw)

    t("raw_inputs", c("sha256", TEXT, primary_key=True), c("name", TEXT), c("source", TEXT),
      c("layout", TEXT, null=True), c("size", INT), c("received_at", TEXT),
      c("content", BLOB))
    t("batches", c("id", TEXT, primary_key=True),
      c("raw_sha256", TEXT, sa.ForeignKey("raw_inputs.sha256")), c("source", TEXT),
      c("name", TEXT), c("rows", INT), c("new", INT), c("duplicates", INT),
      c("quarantined", INT), c("ingested_at", TEXT))
    obs = t("observations", c("id", TEXT, primary_key=True), c("source_kind", TEXT),
            c("source_id", TEXT), c("sensor", TEXT, null=True), c("time_start", TEXT),
            c("time_end", TEXT), c("acq_date", TEXT), c("lat", REAL), c("lon", REAL),
            c("uncertainty_m", REAL), c("attributes", TEXT), c("raw_sha256", TEXT),
            c("batch_id", TEXT, sa.ForeignKey("batches.id")), c("raw_row", INT),
            # the contract's klass and reliability (revision 0008; NULL: not given)
            c("klass", TEXT, null=True), c("reliability", REAL, null=True),
            sa.Index("observations_date", "acq_date"),
            sa.Index("observations_batch", "batch_id"),
            sa.Index("observations_kind", "source_kind", "time_start"))
    t("quarantine", _key(), c("batch_id", TEXT, sa.ForeignKey("batches.id")),
      c("raw_sha256", TEXT), c("row", INT), c("reason", TEXT), c("raw", TEXT),
      sa.Index("quarantine_batch", "batch_id"))
    inc = t("incidents", c("id", TEXT, primary_key=True), c("status", TEXT),
            c("category", TEXT), c("time_start", TEXT), c("lat", REAL), c("lon", REAL),
            c("doc", TEXT),
            sa.Index("incidents_time", "time_start", "id"),
            sa.Index("incidents_status_time", "status", "time_start"),
            sa.Index("incidents_status_category_time", "status", "category", "time_start"),
            sa.Index("incidents_category_time", "category", "time_start"))
    sa.Index("incidents_sector", sector_expr(inc.c.doc, dialect))
    t("violations", c("id", TEXT, primary_key=True),
      c("incident_id", TEXT, sa.ForeignKey("incidents.id")), c("doc", TEXT))
    t("status_changes", _key(), c("incident_id", TEXT), c("old", TEXT), c("new", TEXT),
      c("who", TEXT), c("why", TEXT), c("at", TEXT))
    t("audit_log", c("seq", INT, primary_key=True, autoincrement=False),
            c("at", TEXT), c("actor", TEXT), c("action", TEXT), c("subject", TEXT),
            c("details", TEXT), c("prev_hash", TEXT), c("hash", TEXT))
    # a nonce is unique per signing key (revision 0003): another key holder cannot spend
    # a victim's guessable nonce first and make the victim's submission a "replay"
    t("submissions", c("nonce", TEXT), c("key_id", TEXT),
      c("signer", TEXT), c("signed_at", TEXT), c("raw_sha256", TEXT), c("received_at", TEXT),
      sa.PrimaryKeyConstraint("nonce", "key_id"))
    t("refused", _key(), c("raw_sha256", TEXT), c("name", TEXT), c("source", TEXT),
      c("reason", TEXT), c("at", TEXT))
    t("incident_versions", c("incident_id", TEXT, primary_key=True),
      c("version", INT, primary_key=True, autoincrement=False), c("status", TEXT),
      c("action", TEXT), c("who", TEXT), c("why", TEXT), c("at", TEXT), c("doc", TEXT),
      c("who_id", TEXT, null=True))
    t("review_locks", c("incident_id", TEXT, primary_key=True), c("analyst", TEXT),
      c("claimed_at", TEXT), c("expires_at", TEXT))
    t("allegations", c("id", TEXT, primary_key=True), c("received_at", TEXT),
      c("claimant", TEXT), c("raw_sha256", TEXT), c("batch_id", TEXT), c("doc", TEXT),
      sa.Index("allegations_batch", "batch_id"))
    t("rulings", c("allegation_id", TEXT, sa.ForeignKey("allegations.id"), primary_key=True),
      c("ruling", TEXT), c("basis", TEXT), c("doc", TEXT), c("at", TEXT))
    t("principals", c("id", TEXT, primary_key=True), c("name", TEXT, unique=True),
      c("display_name", TEXT), c("role", TEXT), c("party", TEXT, null=True),
      c("created_at", TEXT), c("disabled_at", TEXT, null=True))
    t("api_tokens", c("token_sha256", TEXT, primary_key=True),
      c("principal_id", TEXT, sa.ForeignKey("principals.id")), c("created_at", TEXT),
      c("revoked_at", TEXT, null=True), sa.Index("api_tokens_principal", "principal_id"))
    t("coverage", _key(), c("at", TEXT), c("doc", TEXT))
    t("products", c("name", TEXT, primary_key=True), c("kind", TEXT), c("report_date", TEXT),
      c("audience", TEXT), c("sha256", TEXT), c("size", INT), c("path", TEXT),
      c("published_at", TEXT))
    # revision 0009: the sensor stream. Located explosions derived from detections across
    # input batches belong to no single batch (an event's detections may straddle two
    # files): they are recomputed window by window and replaced in place, each bound in
    # the log like an incident. ``stream_inputs``: the detections batches taken into a
    # network's stream (never removed); ``stream_state``: each network's resume point.
    t("derived_events", c("id", TEXT, primary_key=True), c("network", TEXT),
      c("window_us", INT), c("source_kind", TEXT), c("source_id", TEXT),
      c("sensor", TEXT, null=True), c("time_start", TEXT), c("time_end", TEXT),
      c("acq_date", TEXT), c("lat", REAL), c("lon", REAL), c("uncertainty_m", REAL),
      c("klass", TEXT, null=True), c("reliability", REAL, null=True), c("attributes", TEXT),
      c("raw_sha256", TEXT), c("raw_row", INT), c("detection_ids", TEXT),
      c("derived_at", TEXT),
      sa.Index("derived_events_network_window", "network", "window_us"),
      sa.Index("derived_events_time", "time_start", "id"))
    t("stream_inputs", c("batch_id", TEXT, sa.ForeignKey("batches.id"), primary_key=True),
      c("network", TEXT), c("t_min_us", INT, null=True), c("t_max_us", INT, null=True),
      c("detections", INT), c("at", TEXT),
      sa.Index("stream_inputs_network_tmax", "network", "t_max_us"))
    t("stream_state", c("network", TEXT, primary_key=True), c("inventory", TEXT),
      c("epoch_us", INT), c("resumed_us", INT, null=True), c("inputs", INT), c("events", INT),
      c("at", TEXT))
    # revision 0010: the first copy of each detection id taken into a network's stream
    # (intake/stream.py, "Repeats"): a later copy of the id is a repeat, or a conflict
    # when its station, phase or time differ, and is never associated again
    t("stream_detections", c("network", TEXT, primary_key=True),
      c("detection_id", TEXT, primary_key=True), c("batch_id", TEXT, sa.ForeignKey("batches.id")),
      c("row", INT), c("station", TEXT), c("phase", TEXT), c("time_us", INT))

    if pg:
        # what an older release reads to refuse a store it does not know (tw_meta's
        # schema_version; SQLite: PRAGMA user_version)
        t("tw_meta", c("k", TEXT, primary_key=True), c("v", TEXT))
        for table in (obs, inc):
            table.append_column(geometry_column())
            sa.Index(f"{table.name}_geom", table.c.geom, postgresql_using="gist")
        for stmt in _PG_APPEND_ONLY:
            sa.event.listen(md, "after_create", _ddl(stmt))
    else:
        for table in (obs, inc):
            sa.event.listen(table, "after_create", _ddl(rtree_ddl(table.name)))
        for stmt in _SQLITE_TRIGGERS:
            sa.event.listen(md, "after_create", _ddl(stmt))
    return md


def _ddl(stmt: str) -> Any:
    return sa.DDL(stmt)  # type: ignore[no-untyped-call]


def sector_expr(doc: Any, dialect: str) -> Any:
    """``doc``'s ``sector_id`` (JSON text): the expression the sector index is built on."""
    if dialect == "postgresql":
        return sa.cast(doc, sa.dialects.postgresql.JSONB)["sector_id"].astext
    return sa.func.json_extract(doc, "$.sector_id")


@cache
def rtree(table: str) -> sa.Table:
    """SQLite's R*Tree of ``table``, for queries (created by ``rtree_ddl``)."""
    return sa.Table(f"{table}_rtree", sa.MetaData(), sa.Column("rid", sa.Integer),
                    *(sa.Column(n, sa.Double) for n in ("min_lon", "max_lon", "min_lat",
                                                        "max_lat")))


def table(dialect: str, name: str) -> sa.Table:
    return tables(dialect).tables[name]
