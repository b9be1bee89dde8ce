"""GenAI costs and tokens: UsageRecord.model (in the natural key), CostRecord.model and .estimated

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02 04:50:00

Existing rows keep working unchanged: model "" and estimated false. The usage natural key gains
``model`` so tokens of several models of one app and day are separate rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('costrecord', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model', sa.String(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('estimated', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('usagerecord', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model', sa.String(), server_default='', nullable=False))
        batch_op.drop_constraint('uq_usagerecord_natural_key', type_='unique')
        batch_op.create_unique_constraint('uq_usagerecord_natural_key', ['source', 'app_id', 'day', 'metric', 'model'])


def downgrade() -> None:
    with op.batch_alter_table('usagerecord', schema=None) as batch_op:
        batch_op.drop_constraint('uq_usagerecord_natural_key', type_='unique')
        batch_op.create_unique_constraint('uq_usagerecord_natural_key', ['source', 'app_id', 'day', 'metric'])
        batch_op.drop_column('model')
    with op.batch_alter_table('costrecord', schema=None) as batch_op:
        batch_op.drop_column('estimated')
        batch_op.drop_column('model')
