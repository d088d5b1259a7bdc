"""per cell: requests unfinished at the window's close, users active and stalled, late open-loop starts, the
Little's-law concurrency ratio and its flags; warnings about metrics of an odd shape; the declared cost of the
configuration, its per-service breakdown, the SUT's CPU time per request, and a capacity-search probe's step

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_CELL_INTS = ('unfinished_requests', 'users_active', 'users_stalled', 'late_starts')
_CELL_FLOATS = ('concurrency_ratio', 'cost', 'cpu_ms_per_request')
_CELL_FLAGS = ('load_stalled', 'load_mismatch')
_CELL_JSON = ('warnings', 'cost_breakdown', 'probe')


def upgrade() -> None:
    with op.batch_alter_table('cells') as batch:
        for name in _CELL_INTS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        for name in _CELL_FLOATS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        for name in _CELL_FLAGS:
            batch.add_column(sa.Column(name, sa.Boolean(), nullable=True))
        for name in _CELL_JSON:
            batch.add_column(sa.Column(name, sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cells') as batch:
        for name in (*_CELL_JSON, *_CELL_FLAGS, *_CELL_FLOATS, *_CELL_INTS):
            batch.drop_column(name)
