"""Real geometry in PostGIS; the observation kind/time index on SQLite too.

* PostgreSQL: ``observations`` and ``incidents`` get ``geom geometry(Point, 4326)``,
  generated from lon/lat, with a GiST index; the box tables beside them
  (``*_rtree``, an envelope per row joined on ``rowid``) and the ``rowid`` identity
  columns go. The hash chain never covered them (storage.binding): ``verify`` holds.
* SQLite keeps its R*Tree; it gains ``observations_kind`` (source kind, time), which
  PostgreSQL already had.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from trucewatch.storage.schema import geometry_column

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        op.create_index("observations_kind", "observations", ["source_kind", "time_start"])
        return
    for name in ("observations", "incidents"):
        op.drop_table(f"{name}_rtree")
        op.drop_column(name, "rowid")
        op.add_column(name, geometry_column())
        op.create_index(f"{name}_geom", name, ["geom"], postgresql_using="gist")
    conn.execute(sa.text("ANALYZE observations"))


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated down: evidence is append-only")
