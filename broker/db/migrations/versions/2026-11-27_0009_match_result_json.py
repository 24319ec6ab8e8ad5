"""fab_request.match_result as json (lz4 where available) on PostgreSQL; invitation loses its
index on request_id alone

The worker writes a request's matching result once (~20 KB: the 50 best workshops and the 20
nearest excluded, with their reasons) and the API reads it whole; nothing queries inside it. jsonb
parsed it into its binary form and pglz compressed it: ~0.7 ms of server CPU per request, against
~0.2 ms for json with lz4 (measured with asyncpg, 2,000 updates of a 31 KB result). The unique
(request_id, workshop_id) index already serves the lookups by request: the second index only cost
an insertion per invitation (eight per request).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _has_lz4() -> bool:
    """The server was built with lz4 (PostgreSQL 14+ built --with-lz4, as Debian's and the official
    images are); otherwise the column keeps the default compression."""
    row = op.get_bind().execute(sa.text(
        "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
    )).first()
    return row is not None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("fab_request", "match_result", type_=sa.JSON(), postgresql_using="match_result::json",
                        existing_nullable=True)
        if _has_lz4():
            op.execute("ALTER TABLE fab_request ALTER COLUMN match_result SET COMPRESSION lz4")
    with op.batch_alter_table("invitation") as batch:
        batch.drop_index("ix_invitation_request_id")


def downgrade() -> None:
    with op.batch_alter_table("invitation") as batch:
        batch.create_index("ix_invitation_request_id", ["request_id"])
    if op.get_bind().dialect.name == "postgresql":
        if _has_lz4():
            op.execute("ALTER TABLE fab_request ALTER COLUMN match_result SET COMPRESSION pglz")
        op.alter_column("fab_request", "match_result", type_=sa.dialects.postgresql.JSONB(),
                        postgresql_using="match_result::jsonb", existing_nullable=True)
