"""the relay's pending events from a partial index in their order (created_at, id)

The relay reads the oldest pending events (``ORDER BY created_at, id LIMIT 200``). With the index on
(state, available_at) PostgreSQL read every pending event and sorted them on each pass: under a burst
(ten events per matched request) ~9 ms a pass. A partial index on (created_at, id) of the pending
events only hands them over in order, and stays as small as the backlog.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_outbox_event_pending', 'outbox_event', ['created_at', 'id'],
        postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"),
    )
    op.drop_index('ix_outbox_event_state_available', table_name='outbox_event')


def downgrade() -> None:
    op.create_index('ix_outbox_event_state_available', 'outbox_event', ['state', 'available_at'])
    op.drop_index('ix_outbox_event_pending', table_name='outbox_event')
