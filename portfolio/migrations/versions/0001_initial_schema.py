"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:26:47.955462
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portfolio.records

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alertlog',
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('sent_at', portfolio.records.UTCDateTime(timezone=True), nullable=False),
    sa.Column('message', sa.String(), nullable=False),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('app',
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('team', sa.String(), nullable=False),
    sa.Column('owner', sa.String(), nullable=True),
    sa.Column('sponsor', sa.String(), nullable=True),
    sa.Column('stage', sa.String(), nullable=False),
    sa.Column('value_kind', sa.String(), nullable=False),
    sa.Column('launched', sa.Date(), nullable=True),
    sa.Column('slo_availability', sa.Float(), nullable=False),
    sa.Column('review_every_days', sa.Integer(), nullable=False),
    sa.Column('cost_tags', sa.String(), nullable=False),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('last_model_version_at', portfolio.records.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('app_id')
    )
    op.create_table('billingtotal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('billing_period', sa.String(), nullable=False),
    sa.Column('currency', sa.String(), nullable=False),
    sa.Column('total', portfolio.records.Money(precision=20, scale=6), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('detail', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'billing_period', 'currency', name='uq_billingtotal_natural_key')
    )
    op.create_table('costrecord',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('category', sa.String(), nullable=False),
    sa.Column('service', sa.String(), nullable=False),
    sa.Column('amount', portfolio.records.Money(precision=20, scale=6), nullable=False),
    sa.Column('currency', sa.String(), nullable=False),
    sa.Column('billing_period', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'app_id', 'day', 'category', 'service', name='uq_costrecord_natural_key')
    )
    with op.batch_alter_table('costrecord', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_costrecord_day'), ['day'], unique=False)

    op.create_table('decision',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('decided_at', portfolio.records.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(), nullable=False),
    sa.Column('decided_by', sa.String(), nullable=False),
    sa.Column('rationale', sa.String(), nullable=False),
    sa.Column('next_review', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_app_id'), ['app_id'], unique=False)

    op.create_table('maintenancerecord',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('ref', sa.String(), nullable=False),
    sa.Column('hours', sa.Float(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.Column('ttr_hours', sa.Float(), nullable=True),
    sa.Column('url', sa.String(), nullable=True),
    sa.Column('title', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'app_id', 'day', 'ref', name='uq_maintenancerecord_natural_key')
    )
    with op.batch_alter_table('maintenancerecord', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenancerecord_day'), ['day'], unique=False)

    op.create_table('outcomerecord',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('amount', portfolio.records.Money(precision=20, scale=6), nullable=False),
    sa.Column('currency', sa.String(), nullable=False),
    sa.Column('attribution', sa.Float(), nullable=False),
    sa.Column('evidence', sa.String(), nullable=False),
    sa.Column('low', portfolio.records.Money(precision=20, scale=6), nullable=True),
    sa.Column('high', portfolio.records.Money(precision=20, scale=6), nullable=True),
    sa.Column('note', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'app_id', 'month', 'kind', name='uq_outcomerecord_natural_key')
    )
    with op.batch_alter_table('outcomerecord', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outcomerecord_month'), ['month'], unique=False)

    op.create_table('syncrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', sa.String(), nullable=False),
    sa.Column('connector_type', sa.String(), nullable=False),
    sa.Column('started', portfolio.records.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished', portfolio.records.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('rows_written', sa.Integer(), nullable=False),
    sa.Column('rows_deleted', sa.Integer(), nullable=False),
    sa.Column('since', portfolio.records.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(), nullable=True),
    sa.Column('warnings', sa.String(), nullable=True),
    sa.Column('worker', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('syncrun', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_syncrun_connector'), ['connector'], unique=False)

    op.create_table('uptimerecord',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('availability', sa.Float(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'app_id', 'day', name='uq_uptimerecord_natural_key')
    )
    with op.batch_alter_table('uptimerecord', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uptimerecord_day'), ['day'], unique=False)

    op.create_table('usagerecord',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('app_id', sa.String(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('metric', sa.String(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'app_id', 'day', 'metric', name='uq_usagerecord_natural_key')
    )
    with op.batch_alter_table('usagerecord', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usagerecord_day'), ['day'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('usagerecord', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usagerecord_day'))

    op.drop_table('usagerecord')
    with op.batch_alter_table('uptimerecord', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uptimerecord_day'))

    op.drop_table('uptimerecord')
    with op.batch_alter_table('syncrun', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_syncrun_connector'))

    op.drop_table('syncrun')
    with op.batch_alter_table('outcomerecord', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outcomerecord_month'))

    op.drop_table('outcomerecord')
    with op.batch_alter_table('maintenancerecord', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenancerecord_day'))

    op.drop_table('maintenancerecord')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_app_id'))

    op.drop_table('decision')
    with op.batch_alter_table('costrecord', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_costrecord_day'))

    op.drop_table('costrecord')
    op.drop_table('billingtotal')
    op.drop_table('app')
    op.drop_table('alertlog')
