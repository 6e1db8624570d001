"""ai: per-workspace settings, the record of every run, and the contacts' read-only lead score

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ai_runs',
    sa.Column('id', layers.db.base.IdType(length=26), nullable=False),
    sa.Column('feature', sa.String(length=32), nullable=False),
    sa.Column('requested_by_type', sa.String(length=16), nullable=False),
    sa.Column('requested_by_id', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=True),
    sa.Column('record_id', layers.db.base.IdType(length=26), nullable=True),
    sa.Column('inputs', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('model', sa.String(length=64), nullable=True),
    sa.Column('prompt_version', sa.String(length=32), nullable=False),
    sa.Column('tokens_in', sa.Integer(), nullable=False),
    sa.Column('tokens_out', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Numeric(precision=14, scale=6), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('output', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('dropped_citations', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('raw_text', sa.Text(), nullable=True),
    sa.Column('attempts', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('finished_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('applied_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('applied_by_type', sa.String(length=16), nullable=True),
    sa.Column('applied_by_id', sa.String(length=64), nullable=True),
    sa.Column('applied', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('workspace_id', layers.db.base.IdType(length=26), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_runs'))
    )
    with op.batch_alter_table('ai_runs', schema=None) as batch_op:
        batch_op.create_index('ix_ai_runs_list', ['workspace_id', 'id'], unique=False)
        batch_op.create_index('ix_ai_runs_month', ['workspace_id', 'created_at'], unique=False)
        batch_op.create_index('ix_ai_runs_requester', ['workspace_id', 'requested_by_id', 'id'], unique=False)

    op.create_table('ai_settings',
    sa.Column('id', layers.db.base.IdType(length=26), nullable=False),
    sa.Column('providers', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('primary_provider', sa.String(length=16), nullable=False),
    sa.Column('monthly_budget', sa.Numeric(precision=14, scale=4), nullable=True),
    sa.Column('budget_currency', sa.String(length=3), nullable=False),
    sa.Column('auto_apply', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('updated_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('workspace_id', layers.db.base.IdType(length=26), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_settings')),
    sa.UniqueConstraint('workspace_id', name='uq_ai_settings_workspace')
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ai_score', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ai_scored_at', layers.db.base.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_contacts_ai_score', ['workspace_id', 'ai_score'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_ai_score')
        batch_op.drop_column('ai_scored_at')
        batch_op.drop_column('ai_score')

    op.drop_table('ai_settings')
    with op.batch_alter_table('ai_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_ai_runs_requester')
        batch_op.drop_index('ix_ai_runs_month')
        batch_op.drop_index('ix_ai_runs_list')

    op.drop_table('ai_runs')
