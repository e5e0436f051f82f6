"""The first copy of each detection id taken into a sensor stream.

A detection id received again in a later file is the same detection sent twice, or, when
its station, phase or time differ, a conflict; either way it must not be associated a
second time (intake/stream.py, "Repeats"). A step that resumes reads only the recent
detections, so the ids taken before are kept in ``stream_detections`` (network,
detection_id, the batch and line of the first copy, its station, phase and time).

The table starts empty, on both dialects created from the specification
(storage/schema.py). A stream taken before this revision has no index: its next step
recomputes the network's whole stream once and fills it (the stream's rule for a state
it cannot resume from), so nothing stored is rewritten here.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from trucewatch.storage.schema import tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    # checkfirst: a pre-Alembic store gets every table of the specification from 0001
    tables(conn.dialect.name).tables["stream_detections"].create(conn, checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated down: evidence is append-only")
