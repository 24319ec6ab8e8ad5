"""public procurement (issue 17): the procedure of each request, buyers' invitations and open
consultations, the award's justifications, DECP records

``fab_request`` gains the columns the law is decided on and summed by (``nature``, ``cpv``,
``cpv_group``, ``estimated_cents``, ``procedure``; the rest of the decision stays in the
``procurement`` JSON the request is answered with) and what the award record shows (its
justifications, who awarded and when). ``invitation.source`` says why a workshop may quote: chosen by
``matching``, added by the ``buyer`` (sans publicité), or answering an open ``consultation`` (MAPA).
``decp_record`` holds one DECP "marché" per award at or above the publication threshold.
``fab_order`` gains the indexes of a buyer's awards by date (cumulative need, rotation) and of the
day's awards (matching's fairness over 12 months).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broker.db.base import JSONType, UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('fab_request') as batch:
        batch.add_column(sa.Column('nature', sa.String(12), nullable=True))
        batch.add_column(sa.Column('cpv', sa.String(10), nullable=True))
        batch.add_column(sa.Column('cpv_group', sa.String(3), nullable=True))
        batch.add_column(sa.Column('estimated_cents', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('procedure', sa.String(16), nullable=True))
        batch.add_column(sa.Column('award_justifications', JSONType, nullable=True))
        batch.add_column(sa.Column('awarded_by', sa.String(200), nullable=True))
        batch.add_column(sa.Column('awarded_at', UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_fab_request_org_cpv_group', 'fab_request', ['org_id', 'cpv_group', 'created_at'])
    with op.batch_alter_table('invitation') as batch:
        batch.add_column(sa.Column('source', sa.String(12), nullable=False, server_default='matching'))
    op.create_index('ix_fab_order_buyer_created', 'fab_order', ['buyer_org_id', 'created_at'])
    op.create_index('ix_fab_order_created_at', 'fab_order', ['created_at'])
    op.create_table(
        'decp_record',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('org_id', sa.String(36), sa.ForeignKey('organization.id'), nullable=False),
        sa.Column('request_id', sa.String(36), sa.ForeignKey('fab_request.id'), nullable=False, unique=True),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('notified_on', sa.Date(), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('published_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('marche', JSONType, nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_decp_record_org_year', 'decp_record', ['org_id', 'year'])
    op.create_index('ix_decp_record_due', 'decp_record', ['due_on'],
                    postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_decp_record_due', table_name='decp_record')
    op.drop_index('ix_decp_record_org_year', table_name='decp_record')
    op.drop_table('decp_record')
    op.drop_index('ix_fab_order_created_at', table_name='fab_order')
    op.drop_index('ix_fab_order_buyer_created', table_name='fab_order')
    with op.batch_alter_table('invitation') as batch:
        batch.drop_column('source')
    op.drop_index('ix_fab_request_org_cpv_group', table_name='fab_request')
    with op.batch_alter_table('fab_request') as batch:
        for column in ('awarded_at', 'awarded_by', 'award_justifications', 'procedure', 'estimated_cents',
                       'cpv_group', 'cpv', 'nature'):
            batch.drop_column(column)
