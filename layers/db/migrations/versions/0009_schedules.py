"""schedules: task reminder marks, stale-deal notices, the workspace's stale-deal threshold

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_reminded_at', layers.db.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('overdue_notified_at', layers.db.base.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_activities_due_reminders', ['due_reminded_at', 'due_at'], unique=False)
        batch_op.create_index('ix_activities_overdue_notices', ['overdue_notified_at', 'due_at'], unique=False)

    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stale_notified_at', layers.db.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('stale_notified_for', layers.db.base.UTCDateTime(), nullable=True))

    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stale_deal_days', sa.Integer(), server_default=sa.text('14'), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('stale_deal_days')

    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_column('stale_notified_for')
        batch_op.drop_column('stale_notified_at')

    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_overdue_notices')
        batch_op.drop_index('ix_activities_due_reminders')
        batch_op.drop_column('overdue_notified_at')
        batch_op.drop_column('due_reminded_at')
