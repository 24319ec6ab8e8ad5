"""partial index on the requests still waiting for their matching (the worker's batches)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_fab_request_match_pending', 'fab_request', ['created_at'],
        postgresql_where=sa.text("match_state = 'pending'"), sqlite_where=sa.text("match_state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index('ix_fab_request_match_pending', table_name='fab_request')
