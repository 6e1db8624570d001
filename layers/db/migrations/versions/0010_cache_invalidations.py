"""cache invalidations (reserved: the record cache's epoch moves in the database)

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
