"""worker hardening: outbox lanes and delays, the webhook sweep's lease, stalled import/export sweeps

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index('ix_exports_stalled', ['status', 'started_at'], unique=False)

    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.create_index('ix_imports_stalled', ['status', 'updated_at'], unique=False)

    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lane', sa.String(length=8), server_default='main', nullable=False))
        batch_op.add_column(sa.Column('delay_seconds', sa.Integer(), nullable=True))

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_after', layers.db.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_column('sweep_after')

    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_column('delay_seconds')
        batch_op.drop_column('lane')

    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_index('ix_imports_stalled')

    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index('ix_exports_stalled')
