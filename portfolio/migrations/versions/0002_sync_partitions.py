"""sync partitions: a fingerprint of what a source last wrote per partition (a bill's period)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:54:53.155369
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('syncpartition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('table_name', sa.String(), nullable=False),
    sa.Column('field', sa.String(), nullable=False),
    sa.Column('value', sa.String(), nullable=False),
    sa.Column('fingerprint', sa.String(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'table_name', 'field', 'value', name='uq_syncpartition_natural_key')
    )


def downgrade() -> None:
    op.drop_table('syncpartition')
