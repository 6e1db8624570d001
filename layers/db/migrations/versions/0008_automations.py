"""automations: rules and the record of every run

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('automation_rules',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('trigger_type', sa.String(length=32), nullable=False),
    sa.Column('trigger', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('conditions', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('actions', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('paused_reason', sa.String(length=500), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('next_run_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_run_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_run_status', sa.String(length=16), nullable=True),
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('archived_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_rules'))
    )
    with op.batch_alter_table('automation_rules', schema=None) as batch_op:
        batch_op.create_index('ix_automation_rules_active', ['workspace_id', 'status', 'object_type'], unique=False)
        batch_op.create_index('ix_automation_rules_due', ['trigger_type', 'status', 'next_run_at'], unique=False)
        batch_op.create_index('ix_automation_rules_list', ['workspace_id', 'archived_at', 'id'], unique=False)

    op.create_table('automation_runs',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('rule_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('event_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=True),
    sa.Column('record_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=True),
    sa.Column('trigger_type', sa.String(length=32), nullable=False),
    sa.Column('trigger', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('steps', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('previous_attempts', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('started_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('finished_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_runs'))
    )
    with op.batch_alter_table('automation_runs', schema=None) as batch_op:
        batch_op.create_index('ix_automation_runs_rule', ['workspace_id', 'rule_id', 'id'], unique=False)
        batch_op.create_index('ix_automation_runs_rule_status', ['workspace_id', 'rule_id', 'status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('automation_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_automation_runs_rule_status')
        batch_op.drop_index('ix_automation_runs_rule')

    op.drop_table('automation_runs')
    with op.batch_alter_table('automation_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_automation_rules_list')
        batch_op.drop_index('ix_automation_rules_due')
        batch_op.drop_index('ix_automation_rules_active')

    op.drop_table('automation_rules')
