"""successful requests' percentiles and histogram per measurement; per cell the offered and achieved request rate
(open-loop load) and whether it fell short, the CPU sets of generator and stack, the host's CPU use and whether
it saturated

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_MEASUREMENTS = ('p50_ok_ms', 'p90_ok_ms', 'p95_ok_ms', 'p99_ok_ms')
_CELL_FLOATS = ('offered_rps', 'achieved_rps')
_CELL_FLAGS = ('rate_saturated', 'host_saturated')
_CELL_JSON = ('cpu_sets', 'host_cpu')


def upgrade() -> None:
    with op.batch_alter_table('measurements') as batch:  # successful requests alone, beside all requests
        for name in _MEASUREMENTS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column('histogram_ok', sa.JSON(), nullable=True))
    with op.batch_alter_table('cells') as batch:
        for name in _CELL_FLOATS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        for name in _CELL_FLAGS:
            batch.add_column(sa.Column(name, sa.Boolean(), nullable=True))
        for name in _CELL_JSON:
            batch.add_column(sa.Column(name, sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cells') as batch:
        for name in (*_CELL_JSON, *_CELL_FLAGS, *_CELL_FLOATS):
            batch.drop_column(name)
    with op.batch_alter_table('measurements') as batch:
        batch.drop_column('histogram_ok')
        for name in _MEASUREMENTS:
            batch.drop_column(name)
