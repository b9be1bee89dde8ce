"""bulk costs: CostRecord keyed by its natural key (WITHOUT ROWID on SQLite); no surrogate id, no
second unique index, no day index

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:30:00

Issue 15. A bill's millions of rows were written into a rowid table plus a five-column unique index
plus a day index: three B-trees per row, the two indexes in random order (46 s for 2.1M rows on
SQLite). The natural key (source, app_id, day, category, service) is now the primary key, and on
SQLite the table is WITHOUT ROWID, so rows written in key order are appended to one B-tree.

Existing rows are copied over in key order, unchanged (nothing in the product referred to the
surrogate ``id``). PostgreSQL gets the same layout (the natural key as primary key, no id).

Chain: written against 0004; re-chained after the lifecycle (0005) and the assumptions (0006) migrations, which
touch other tables (this migration only touches ``costrecord``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portfolio.records

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_KEY = ['source', 'app_id', 'day', 'category', 'service']
_VALUES = ['amount', 'currency', 'billing_period', 'model', 'estimated']


def _columns(with_id: bool) -> list[sa.Column]:  # type: ignore[type-arg]
    cols = [sa.Column('id', sa.Integer(), nullable=False)] if with_id else []
    return cols + [
        sa.Column('source', sa.String(), nullable=False),
        sa.Column('app_id', sa.String(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('category', sa.String(), nullable=False),
        sa.Column('service', sa.String(), nullable=False),
        sa.Column('amount', portfolio.records.Money(precision=20, scale=6), nullable=False),
        sa.Column('currency', sa.String(), nullable=False),
        sa.Column('billing_period', sa.String(), nullable=True),
        sa.Column('model', sa.String(), server_default='', nullable=False),
        sa.Column('estimated', sa.Boolean(), server_default=sa.false(), nullable=False),
    ]


def _copy(into: str, order: bool) -> None:
    cols = ', '.join(_KEY + _VALUES)
    op.execute(f"INSERT INTO {into} ({cols}) SELECT {cols} FROM costrecord" + (f" ORDER BY {', '.join(_KEY)}" if order else ""))


def upgrade() -> None:
    op.create_table('_costrecord_0007', *_columns(with_id=False),
                    sa.PrimaryKeyConstraint(*_KEY), sqlite_with_rowid=False)
    _copy('_costrecord_0007', order=True)
    op.drop_table('costrecord')
    op.rename_table('_costrecord_0007', 'costrecord')


def downgrade() -> None:
    op.create_table('_costrecord_0004', *_columns(with_id=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint(*_KEY, name='uq_costrecord_natural_key'))
    _copy('_costrecord_0004', order=True)
    op.drop_table('costrecord')
    op.rename_table('_costrecord_0004', 'costrecord')
    op.create_index('ix_costrecord_day', 'costrecord', ['day'], unique=False)
