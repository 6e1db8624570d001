"""cache invalidations: the record cache's epoch moves in the database (layers/cache/invalidations.py)

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cache_invalidations',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cache_invalidations')),
    )


def downgrade() -> None:
    op.drop_table('cache_invalidations')
