"""crisis calls: delivery points, commitments (capacity booked while proposed), rebalances

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 14:59:17.969827
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import broker.db.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crisis_call',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('item_slug', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('deadline', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('max_distance_km', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('rebalance_due_at', broker.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rebalance_reason', sa.String(length=40), nullable=True),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', broker.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['item_slug'], ['catalogue_item.slug'], name=op.f('fk_crisis_call_item_slug_catalogue_item')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_crisis_call_org_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crisis_call'))
    )
    with op.batch_alter_table('crisis_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crisis_call_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crisis_call_rebalance_due_at'), ['rebalance_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_crisis_call_status'), ['status'], unique=False)

    op.create_table('delivery_point',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('commune_insee', sa.String(length=5), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('accepted_units', sa.Integer(), nullable=False),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('accepted_units >= 0 AND accepted_units <= quantity', name=op.f('ck_delivery_point_accepted_within_quantity')),
    sa.ForeignKeyConstraint(['call_id'], ['crisis_call.id'], name=op.f('fk_delivery_point_call_id_crisis_call')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_point'))
    )
    with op.batch_alter_table('delivery_point', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_point_call_id'), ['call_id'], unique=False)

    op.create_table('rebalance',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('moved', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('units_moved', sa.Integer(), nullable=False),
    sa.Column('unmet_before', sa.Integer(), nullable=False),
    sa.Column('unmet_after', sa.Integer(), nullable=False),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['crisis_call.id'], name=op.f('fk_rebalance_call_id_crisis_call')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rebalance')),
    sa.UniqueConstraint('call_id', 'revision', name=op.f('uq_rebalance_call_id_revision'))
    )
    with op.batch_alter_table('rebalance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rebalance_call_id'), ['call_id'], unique=False)

    op.create_table('commitment',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('delivery_point_id', sa.String(length=36), nullable=False),
    sa.Column('workshop_id', sa.String(length=36), nullable=False),
    sa.Column('maker_org_id', sa.String(length=36), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('distance_km', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('origin', sa.String(length=12), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('produced', sa.Integer(), nullable=False),
    sa.Column('delivered', sa.Integer(), nullable=False),
    sa.Column('expires_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', broker.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', broker.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.Column('last_report_at', broker.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('delivered >= 0 AND delivered <= produced AND produced <= quantity', name=op.f('ck_commitment_progress_within_quantity')),
    sa.ForeignKeyConstraint(['call_id'], ['crisis_call.id'], name=op.f('fk_commitment_call_id_crisis_call')),
    sa.ForeignKeyConstraint(['delivery_point_id'], ['delivery_point.id'], name=op.f('fk_commitment_delivery_point_id_delivery_point')),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshop.id'], name=op.f('fk_commitment_workshop_id_workshop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commitment'))
    )
    with op.batch_alter_table('commitment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commitment_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_commitment_delivery_point_id'), ['delivery_point_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_commitment_maker_org_id'), ['maker_org_id'], unique=False)
        batch_op.create_index('ix_commitment_status_expires_at', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_commitment_workshop_id'), ['workshop_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('commitment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commitment_workshop_id'))
        batch_op.drop_index('ix_commitment_status_expires_at')
        batch_op.drop_index(batch_op.f('ix_commitment_maker_org_id'))
        batch_op.drop_index(batch_op.f('ix_commitment_delivery_point_id'))
        batch_op.drop_index(batch_op.f('ix_commitment_call_id'))

    op.drop_table('commitment')
    with op.batch_alter_table('rebalance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rebalance_call_id'))

    op.drop_table('rebalance')
    with op.batch_alter_table('delivery_point', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_point_call_id'))

    op.drop_table('delivery_point')
    with op.batch_alter_table('crisis_call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crisis_call_status'))
        batch_op.drop_index(batch_op.f('ix_crisis_call_rebalance_due_at'))
        batch_op.drop_index(batch_op.f('ix_crisis_call_org_id'))

    op.drop_table('crisis_call')
