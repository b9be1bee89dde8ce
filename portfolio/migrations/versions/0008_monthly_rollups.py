"""monthly rollups: costmonth, usagemonth, uptimemonth, filled from the daily tables

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:40:00

Issue 15. Reports and dashboard pages summed every daily fact row at every read (5.2 million at
1,000 apps x 36 months). The rollups hold one row per app and month (GenAI rows per day) of
exactly what portfolio.facts computes; the writers keep them (portfolio.rollup). This migration
creates them and fills them from the rows already there, in SQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portfolio.records

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'costmonth',
        sa.Column('source', sa.String(), nullable=False),
        sa.Column('app_id', sa.String(), nullable=False),
        sa.Column('category', sa.String(), nullable=False),
        sa.Column('service', sa.String(), nullable=False),
        sa.Column('currency', sa.String(), nullable=False),
        sa.Column('billing_period', sa.String(), nullable=True),
        sa.Column('model', sa.String(), nullable=False),
        sa.Column('estimated', sa.Boolean(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('amount', portfolio.records.Money(precision=20, scale=6), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=False),
        sa.Column('last_day', sa.Date(), nullable=False),
    )
    op.create_index('ix_costmonth_source_day', 'costmonth', ['source', 'day'])
    op.create_table(
        'usagemonth',
        sa.Column('source', sa.String(), nullable=False),
        sa.Column('app_id', sa.String(), nullable=False),
        sa.Column('metric', sa.String(), nullable=False),
        sa.Column('model', sa.String(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=False),
        sa.Column('last_day', sa.Date(), nullable=False),
    )
    op.create_index('ix_usagemonth_source_day', 'usagemonth', ['source', 'day'])
    op.create_table(
        'uptimemonth',
        sa.Column('app_id', sa.String(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('source', sa.String(), nullable=True),
        sa.Column('availability', sa.Float(), nullable=True),
        sa.Column('samples', sa.BigInteger(), nullable=True),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=False),
        sa.Column('last_day', sa.Date(), nullable=False),
    )
    op.create_index('ix_uptimemonth_day', 'uptimemonth', ['day'])
    from portfolio import rollup

    rollup.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index('ix_uptimemonth_day', table_name='uptimemonth')
    op.drop_table('uptimemonth')
    op.drop_index('ix_usagemonth_source_day', table_name='usagemonth')
    op.drop_table('usagemonth')
    op.drop_index('ix_costmonth_source_day', table_name='costmonth')
    op.drop_table('costmonth')
