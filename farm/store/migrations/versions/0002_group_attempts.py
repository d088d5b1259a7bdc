"""group attempts and last error (a group is tried at most FARM_MAX_ATTEMPTS times); a sweep's source file

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
    with op.batch_alter_table('cell_groups') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('last_error', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cell_groups') as batch:
        batch.drop_column('last_error')
        batch.drop_column('attempts')
    with op.batch_alter_table('sweeps') as batch:
        batch.drop_column('source')
