"""The sensor stream: located explosions that belong to no single batch.

Detections are stored as received (one batch per detections file) and located by the
worker, and by the batch cycle, across files through the associator's streaming
windows (sensors/stream.py). What that derives is kept in three new tables, on both
dialects created from the specification (storage/schema.py):

* ``derived_events``: the located explosions, in the observation contract's columns,
  with the network, the window they were found in (``window_us``) and their detections;
* ``stream_inputs``: each detections batch taken into a network's stream, with the span
  of its detections;
* ``stream_state``: each network's resume point (the inventory located against, the
  window grid's epoch, where the last step resumed).

All three start empty: the explosions located per file by earlier releases stay in
``observations`` (their batches are ``sensor_events``, which the stream does not take),
so nothing stored is rewritten and the hash chain needs no entry. From here on each
row is bound in the log like any other (storage/binding.py).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from trucewatch.storage.schema import tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NEW = ("derived_events", "stream_inputs", "stream_state")


def upgrade() -> None:
    conn = op.get_bind()
    md = tables(conn.dialect.name)
    for name in NEW:
        # checkfirst: a pre-Alembic store gets every table of the specification from
        # revision 0001, these included
        md.tables[name].create(conn, checkfirst=True)  # with its indexes


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated down: evidence is append-only")
