"""group attempts and last error (a group is tried at most FARM_MAX_ATTEMPTS times); a sweep's source file;
SUT host leases and each cell's SUT host

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sweeps') as batch:  # where the sweep file was: relative paths resolve from there
        batch.add_column(sa.Column('source', sa.String(length=1000), nullable=True))
    with op.batch_alter_table('cells') as batch:  # the SUT host a cell's stack ran on, beside its generator
        batch.add_column(sa.Column('sut_host', sa.String(length=200), nullable=True))
    op.create_table('sut_leases',
                    sa.Column('host', sa.String(length=200), nullable=False),
                    sa.Column('group_id', sa.String(length=16), nullable=True),
                    sa.Column('worker', sa.String(length=200), nullable=True),
                    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('host'))
    with op.batch_alter_table('cell_groups') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('last_error', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cell_groups') as batch:
        batch.drop_column('last_error')
        batch.drop_column('attempts')
    with op.batch_alter_table('sweeps') as batch:
        batch.drop_column('source')
    op.drop_table('sut_leases')
    with op.batch_alter_table('cells') as batch:
        batch.drop_column('sut_host')
