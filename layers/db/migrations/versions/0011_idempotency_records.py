"""idempotency records: an Idempotency-Key's record commits with the request's own effects

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import layers.db.base  # noqa: F401 - column types used by the rendered migrations
from sqlalchemy.dialects import mysql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _ascii(length: int) -> sa.types.TypeEngine[str]:
    column = mysql.VARCHAR(charset='ascii', collation='ascii_bin', length=length)
    return sa.String(length=length).with_variant(column, 'mariadb').with_variant(column, 'mysql')


def upgrade() -> None:
    op.create_table('idempotency_records',
    sa.Column('owner', _ascii(64), nullable=False),
    sa.Column('key_digest', _ascii(64), nullable=False),
    sa.Column('fingerprint', _ascii(64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('headers', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('body', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('owner', 'key_digest', name=op.f('pk_idempotency_records'))
    )
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_records_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_records_expires_at'))

    op.drop_table('idempotency_records')
