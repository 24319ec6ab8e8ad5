"""invoicing (issue 23): invoices and credit notes of orders, their gapless numbers, their history

``organization`` gains ``vat_regime`` (normal, or franchise en base: CGI art. 293 B), ``legal_form``
(the INSEE catégorie juridique, which sets a buyer's payment delay) and ``iban``. ``invoice`` holds
each invoice and credit note with its amounts, its Chorus Pro deposit and status, and its payment
clock; ``invoice_counter`` the last number of each seller's series; ``invoice_event`` each status.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broker.db.base import JSONType, UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organization') as batch:
        batch.add_column(sa.Column('vat_regime', sa.String(20), nullable=False, server_default='normal'))
        batch.add_column(sa.Column('legal_form', sa.String(4), nullable=True))
        batch.add_column(sa.Column('iban', sa.String(34), nullable=True))
    op.create_table(
        'invoice',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('kind', sa.String(12), nullable=False),
        sa.Column('number', sa.String(20), nullable=False),
        sa.Column('order_id', sa.String(36), sa.ForeignKey('fab_order.id'), nullable=False),
        sa.Column('preceding_id', sa.String(36), sa.ForeignKey('invoice.id'), nullable=True),
        sa.Column('seller_org_id', sa.String(36), nullable=False),
        sa.Column('buyer_org_id', sa.String(36), nullable=False),
        sa.Column('issue_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('vat_regime', sa.String(20), nullable=False),
        sa.Column('lines', JSONType, nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('net_cents', sa.BigInteger(), nullable=False),
        sa.Column('vat_cents', sa.BigInteger(), nullable=False),
        sa.Column('total_cents', sa.BigInteger(), nullable=False),
        sa.Column('credited_cents', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('service_fait_on', sa.Date(), nullable=False),
        sa.Column('delay_days', sa.Integer(), nullable=False),
        sa.Column('received_on', sa.Date(), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('paid_on', sa.Date(), nullable=True),
        sa.Column('chorus_id', sa.String(64), nullable=True),
        sa.Column('chorus_syntax', sa.String(12), nullable=True),
        sa.Column('status_reason', sa.Text(), nullable=True),
        sa.Column('status_on', sa.Date(), nullable=False),
        sa.Column('overdue_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('checked_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('seller_org_id', 'number', name='uq_invoice_seller_number'),
    )
    op.create_index('ix_invoice_order_id', 'invoice', ['order_id'])
    op.create_index('ix_invoice_preceding_id', 'invoice', ['preceding_id'])
    op.create_index('ix_invoice_seller_org_id', 'invoice', ['seller_org_id'])
    op.create_index('ix_invoice_buyer_due', 'invoice', ['buyer_org_id', 'due_on'])
    op.create_index('ix_invoice_status', 'invoice', ['status'])
    op.create_table(
        'invoice_counter',
        sa.Column('seller_org_id', sa.String(36), primary_key=True),
        sa.Column('series', sa.String(4), primary_key=True),
        sa.Column('last', sa.Integer(), nullable=False),
    )
    op.create_table(
        'invoice_event',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('invoice_id', sa.String(36), sa.ForeignKey('invoice.id'), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('from_status', sa.String(20), nullable=True),
        sa.Column('to_status', sa.String(20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
    )
    op.create_index('ix_invoice_event_invoice_id', 'invoice_event', ['invoice_id'])


def downgrade() -> None:
    op.drop_index('ix_invoice_event_invoice_id', table_name='invoice_event')
    op.drop_table('invoice_event')
    op.drop_table('invoice_counter')
    for name in ('ix_invoice_status', 'ix_invoice_buyer_due', 'ix_invoice_seller_org_id', 'ix_invoice_preceding_id',
                 'ix_invoice_order_id'):
        op.drop_index(name, table_name='invoice')
    op.drop_table('invoice')
    with op.batch_alter_table('organization') as batch:
        for column in ('iban', 'legal_form', 'vat_regime'):
            batch.drop_column(column)
