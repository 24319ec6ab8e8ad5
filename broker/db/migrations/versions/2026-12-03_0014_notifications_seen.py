"""in-app notifications (issue 21 item 8): each organisation's read watermark, and its events in order

``notification_seen`` holds, per organisation, the last event it marked read (``seen_at``,
``seen_id``: the outbox's order). Two indexes walk an organisation's events in that order, as the
tenant (``org_id``) and as the other party (``partner_org_id``), so that the unread counter shown on
every page reads only the events after the watermark (the single-column indexes read them all).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broker.db.base import UTCDateTime

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notification_seen',
        sa.Column('org_id', sa.String(36), sa.ForeignKey('organization.id'), primary_key=True),
        sa.Column('seen_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('seen_id', sa.String(36), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_outbox_event_org_feed', 'outbox_event', ['org_id', 'created_at', 'id'])
    op.create_index('ix_outbox_event_partner_feed', 'outbox_event', ['partner_org_id', 'created_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_event_partner_feed', table_name='outbox_event')
    op.drop_index('ix_outbox_event_org_feed', table_name='outbox_event')
    op.drop_table('notification_seen')
