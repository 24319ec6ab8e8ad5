"""registry_version: the counter that invalidates cached candidate indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 13:25:54.238369
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registry_version',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_registry_version'))
    )
    op.bulk_insert(sa.table("registry_version", sa.column("name", sa.String), sa.column("version", sa.Integer)),
                   [{"name": "workshops", "version": 0}])


def downgrade() -> None:
    op.drop_table('registry_version')
