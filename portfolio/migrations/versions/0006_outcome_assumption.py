"""Value assumptions: OutcomeRecord.assumption, the name of the assumption behind an estimate row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 07:45:00

One nullable column: existing rows name no assumption (their estimate value is listed as
"no assumption" unless a [plan.assumptions] entry covers it; see portfolio/plan.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outcomerecord', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assumption', sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outcomerecord', schema=None) as batch_op:
        batch_op.drop_column('assumption')
