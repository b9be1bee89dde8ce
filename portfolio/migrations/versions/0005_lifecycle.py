"""Lifecycle: the LifecycleEvent audit trail (proposals, approvals, stage changes) and App.retired_on

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:30:00

A new table and one nullable column: existing databases keep every row, and an app without
lifecycle events keeps the stage its inventory gives it (see portfolio/lifecycle.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portfolio.records

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lifecycleevent',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('at', portfolio.records.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('actor', sa.String(), nullable=False),
    sa.Column('authenticated', sa.Boolean(), nullable=False),
    sa.Column('proposal_id', sa.String(), nullable=True),
    sa.Column('action', sa.String(), nullable=True),
    sa.Column('stage', sa.String(), nullable=True),
    sa.Column('effective', sa.Date(), nullable=True),
    sa.Column('planned', sa.Date(), nullable=True),
    sa.Column('next_review', sa.Date(), nullable=True),
    sa.Column('rationale', sa.String(), nullable=False),
    sa.Column('evidence', sa.String(), nullable=True),
    sa.Column('currency', sa.String(), nullable=True),
    sa.Column('projected_annual_savings', portfolio.records.Money(precision=20, scale=6), nullable=True),
    sa.Column('value_at_risk', portfolio.records.Money(precision=20, scale=6), nullable=True),
    sa.Column('net_effect', portfolio.records.Money(precision=20, scale=6), nullable=True),
    sa.Column('freed_hours_per_year', sa.Float(), nullable=True),
    sa.Column('self_approved', sa.Boolean(), nullable=False),
    sa.Column('model_version_at', portfolio.records.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lifecycleevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lifecycleevent_app_id'), ['app_id'], unique=False)
    with op.batch_alter_table('app', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('app', schema=None) as batch_op:
        batch_op.drop_column('retired_on')
    with op.batch_alter_table('lifecycleevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lifecycleevent_app_id'))
    op.drop_table('lifecycleevent')
