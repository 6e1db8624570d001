"""webhooks: subscriptions, deliveries (one per event and subscription) and delivery attempts

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_attempts',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('delivery_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('attempted_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('response_excerpt', sa.Text(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_attempts_attempted', ['attempted_at'], unique=False)
        batch_op.create_index('ix_webhook_attempts_delivery', ['workspace_id', 'delivery_id', 'id'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('subscription_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('fanout_key', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=True),
    sa.Column('event_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('event', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempt_count', sa.Integer(), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('first_attempt_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_attempt_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('next_attempt_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('completed_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_created', ['created_at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_log', ['workspace_id', 'subscription_id', 'id'], unique=False)
        batch_op.create_index('ux_webhook_deliveries_fanout', ['subscription_id', 'fanout_key'], unique=True)

    op.create_table('webhook_subscriptions',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('event_types', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('filter', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('filter_object_type', sa.String(length=32), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('1'), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('previous_secret', sa.String(length=100), nullable=True),
    sa.Column('previous_secret_expires_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failing_since', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscriptions'))
    )
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_subscriptions_list', ['workspace_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_subscriptions_list')

    op.drop_table('webhook_subscriptions')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ux_webhook_deliveries_fanout')
        batch_op.drop_index('ix_webhook_deliveries_log')
        batch_op.drop_index('ix_webhook_deliveries_due')
        batch_op.drop_index('ix_webhook_deliveries_created')

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_attempts_delivery')
        batch_op.drop_index('ix_webhook_attempts_attempted')

    op.drop_table('webhook_attempts')
