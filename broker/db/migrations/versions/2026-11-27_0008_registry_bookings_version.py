"""registry_version: a second counter, ``bookings``, for what awards and crisis commitments change

Seeded here, as ``workshops`` was in 0004, so that the first bookings never race to insert it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

REGISTRY_VERSION = sa.table("registry_version", sa.column("name", sa.String), sa.column("version", sa.Integer))


def upgrade() -> None:
    op.bulk_insert(REGISTRY_VERSION, [{"name": "bookings", "version": 0}])


def downgrade() -> None:
    op.execute(REGISTRY_VERSION.delete().where(REGISTRY_VERSION.c.name == "bookings"))
