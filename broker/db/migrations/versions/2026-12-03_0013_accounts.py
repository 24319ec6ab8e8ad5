"""accounts for people (issue 21 item 7): named accounts signed in by e-mail and password

``account`` holds one person of an organisation: the e-mail (stored in lower case, unique), the
display name, the role (the API keys' roles but ``integration``), the argon2id hash of the password
(none until the invitation is accepted), when it was disabled, last signed in and last changed its
password (sessions opened before that end). ``account_token`` holds the one-time links e-mailed to
people (an invitation, valid 72 h; a password reset, valid 1 h) by the SHA-256 of their token, with
when each was used: a link works once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broker.db.base import UTCDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'account',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('org_id', sa.String(36), sa.ForeignKey('organization.id'), nullable=False),
        sa.Column('email', sa.String(254), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('role', sa.String(20), nullable=False),
        sa.Column('password_hash', sa.String(255), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_signin_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('password_changed_at', UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint('email', name='uq_account_email'),
    )
    op.create_index('ix_account_org_id', 'account', ['org_id'])
    op.create_table(
        'account_token',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('account_id', sa.String(36), sa.ForeignKey('account.id'), nullable=False),
        sa.Column('purpose', sa.String(12), nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint('token_hash', name='uq_account_token_token_hash'),
    )
    op.create_index('ix_account_token_account_id', 'account_token', ['account_id'])


def downgrade() -> None:
    op.drop_index('ix_account_token_account_id', table_name='account_token')
    op.drop_table('account_token')
    op.drop_index('ix_account_org_id', table_name='account')
    op.drop_table('account')
