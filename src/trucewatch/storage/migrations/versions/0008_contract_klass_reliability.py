"""Observations keep the contract's ``klass`` and ``reliability`` (model.contract), so that
the stages read the contract from the store instead of each source's ``attributes``.

* Both dialects: two nullable columns, ``klass`` (text) and ``reliability`` (real /
  double precision), added at the end of ``observations``.
* The rows already stored get what the built-in adapters now emit, from what each row
  already holds (nothing is guessed):

  - ``satellite_fire``: klass ``fire``, no reliability (as ingest.firms emits);
  - ``sensor_network``: klass ``explosion``; reliability ``n_defining / 8`` clipped to
    0.3..1 for a located event, 0 for one that could not be located (as
    sensors.events emits; the numbers are frozen here as that revision had them);
  - ``drone``: klass and reliability are the report's ``class`` and ``confidence`` in its
    ``attributes`` (as ingest.drones emits);
  - any other kind: left NULL (its adapter gave none).
* The hash chain: a row's hash leaves out NULL columns, so a row this revision does not
  fill keeps its hash. A filled row's new hash is logged in one ``backfill`` entry: rows
  listed one by one in the log move ``[old, new]`` (``state``); a batch bound by one
  digest is rebound (``rebound``: the digest found before, the new one; see
  storage.binding). A row changed outside the log before the migration still shows: the
  ``before`` this entry logs is not what the log had.

Revision ID: 0008
Revises: 0003
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from trucewatch.integrity.chain import LogEntry
from trucewatch.storage import binding
from trucewatch.storage.database import append_log
from trucewatch.storage.schema import REAL, TEXT, tables

revision = "0008"
down_revision = "0003"
branch_labels = None
depends_on = None

KINDS = ("satellite_fire", "sensor_network", "drone")
FULL_TRUST_DEFINING = 8.0  # sensors.events at this revision
MIN_TRUST = 0.3


def _json(dialect: str, key: str) -> str:
    if dialect == "postgresql":
        return f"(attributes::json ->> '{key}')"
    return f"json_extract(attributes, '$.{key}')"


def _backfill_sql(dialect: str) -> str:
    real = "double precision" if dialect == "postgresql" else "REAL"
    n = f"CAST({_json(dialect, 'n_defining')} AS {real})"
    lo, hi = ("GREATEST", "LEAST") if dialect == "postgresql" else ("MAX", "MIN")
    trust = (f"CASE WHEN {n} IS NULL THEN NULL ELSE "
             f"{hi}({lo}({n} / {FULL_TRUST_DEFINING}, {MIN_TRUST}), 1.0) END")
    return (
        "UPDATE observations SET "
        "klass = CASE source_kind WHEN 'satellite_fire' THEN 'fire' "
        "WHEN 'sensor_network' THEN 'explosion' "
        f"WHEN 'drone' THEN {_json(dialect, 'class')} END, "
        "reliability = CASE source_kind "
        f"WHEN 'sensor_network' THEN CASE WHEN {_json(dialect, 'status')} = 'located' "
        f"THEN {trust} ELSE 0.0 END "
        f"WHEN 'drone' THEN CAST({_json(dialect, 'confidence')} AS {real}) END "
        "WHERE batch_id = :bid AND klass IS NULL AND source_kind IN "
        f"({', '.join(repr(k) for k in KINDS)})")


def _hashes(conn: sa.Connection, bid: str) -> dict[binding.Key, bytes]:
    spec = binding.BY_NAME["observations"]
    o = tables(conn.dialect.name).tables["observations"]
    stmt = binding.select(conn, spec).where(o.c.batch_id == bid)
    return {k: h for k, h, _ in binding._hashed(conn.execute(stmt), spec)}


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    op.add_column("observations", sa.Column("klass", TEXT, nullable=True))
    op.add_column("observations", sa.Column("reliability", REAL, nullable=True))
    o = tables(dialect).tables["observations"]
    touched = [r[0] for r in conn.execute(
        sa.select(o.c.batch_id).where(o.c.source_kind.in_(KINDS)).distinct()
        .order_by(o.c.batch_id))]
    if not touched:
        return
    g = tables(dialect).tables["audit_log"]
    log = [LogEntry(*r) for r in conn.execute(
        sa.select(g.c.seq, g.c.at, g.c.actor, g.c.action, g.c.subject, g.c.details,
                  g.c.prev_hash, g.c.hash).order_by(g.c.seq))]
    digested = binding._replay(log, []).batches.get("observations", {})
    update = sa.text(_backfill_sql(dialect))
    moved: dict[str, list[str | None]] = {}
    rebound: dict[str, dict[str, Any]] = {}
    for bid in touched:
        before = _hashes(conn, bid)
        conn.execute(update, {"bid": bid})
        after = _hashes(conn, bid)
        if bid in digested:
            if before != after:
                rebound[bid] = {"before": binding.digest(before.values()),
                                "rows": len(after), "sha256": binding.digest(after.values())}
            continue
        for key, h in after.items():
            if before.get(key) != h:
                old = before.get(key)
                moved[binding.key_text(key)] = [old.hex() if old else None, h.hex()]
    details: dict[str, Any] = {"revision": revision,
                               "why": "observations keep the contract's klass and reliability"}
    if moved:
        details["state"] = {"observations": moved}
    if rebound:
        details["rebound"] = {"observations": rebound}
    if moved or rebound:
        append_log(conn, "migration", "backfill", "observations", details)


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated down: evidence is append-only")
