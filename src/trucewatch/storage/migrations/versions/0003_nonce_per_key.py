"""Nonces are unique per signing key: ``submissions`` is keyed by ``(nonce, key_id)``.

Before, a nonce was one global namespace: whoever held any key could spend another
key's guessable nonce first and make that key's real submission a "replay".

* PostgreSQL: the primary key constraint is dropped and re-added on (nonce, key_id).
* SQLite (a primary key cannot be altered): the table is recreated from the
  specification and every row copied over, as it was.
* The hash chain: the rows are unchanged (same columns, same row hashes), but their
  binding key goes from ``nonce`` to ``nonce#key_id``. One ``rekey`` log entry moves
  each row from its old key to its new one (``[hash, null]`` and ``[null, hash]``), so
  ``verify`` replays the old entries and this one to the store as it is. A row changed
  outside the log before the migration still shows: its ``before`` is not what the log
  had.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from trucewatch.integrity.chain import LogEntry
from trucewatch.storage import binding
from trucewatch.storage.database import append_log
from trucewatch.storage.schema import tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = "nonce, key_id, signer, signed_at, raw_sha256, received_at"


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    spec = binding.BY_NAME["submissions"]
    rows = list(binding._hashed(conn.execute(binding.select(conn, spec)), spec))
    if dialect == "postgresql":
        pk = sa.inspect(conn).get_pk_constraint("submissions").get("name") or "submissions_pkey"
        conn.exec_driver_sql(f'ALTER TABLE submissions DROP CONSTRAINT "{pk}"')
        conn.exec_driver_sql("ALTER TABLE submissions ADD CONSTRAINT submissions_pkey "
                             "PRIMARY KEY (nonce, key_id)")
    else:
        conn.exec_driver_sql("ALTER TABLE submissions RENAME TO submissions_0002")
        tables(dialect).tables["submissions"].create(conn)
        conn.exec_driver_sql(f"INSERT INTO submissions ({_COLUMNS}) "
                             f"SELECT {_COLUMNS} FROM submissions_0002")
        conn.exec_driver_sql("DROP TABLE submissions_0002")
    # only rows the log knows by their old key move: a store bound during this same
    # upgrade (a pre-binding store, through 0001's bind_state) is bound by the new key
    g = tables(dialect).tables["audit_log"]
    log = [LogEntry(*r) for r in conn.execute(
        sa.select(g.c.seq, g.c.at, g.c.actor, g.c.action, g.c.subject, g.c.details,
                  g.c.prev_hash, g.c.hash).order_by(g.c.seq))]
    known = binding._replay(log, []).rows.get("submissions", {})
    rows = [r for r in rows if binding.key_text(r[0][:1]) in known
            and binding.key_text(r[0]) not in known]
    if rows:
        moved: dict[str, list[str | None]] = {}
        for key, h, _ in rows:
            moved[binding.key_text(key[:1])] = [h.hex(), None]
            moved[binding.key_text(key)] = [None, h.hex()]
        append_log(conn, "migration", "rekey", "submissions", {
            "revision": revision, "why": "nonces are unique per signing key",
            "state": {"submissions": moved}})


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated down: evidence is append-only")
