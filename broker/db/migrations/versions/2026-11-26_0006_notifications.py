"""organisation contact address (notifications) and the failing streak of a webhook endpoint (RT-3)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 15:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broker.db.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('organization', sa.Column('contact_email', sa.String(length=254), nullable=True))
    op.add_column('webhook_endpoint',
                  sa.Column('failing_since', broker.db.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoint') as batch:
        batch.drop_column('failing_since')
    with op.batch_alter_table('organization') as batch:
        batch.drop_column('contact_email')
