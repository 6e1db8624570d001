"""imports and exports: CSV imports with their checkpoint and rejected rows, CSV/JSON Lines exports

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import layers.db.base  # noqa: F401 - column types used by the rendered migrations

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _id(name: str) -> sa.Column:  # type: ignore[type-arg]
    kind = sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb')
    return sa.Column(name, kind.with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'),
                     nullable=False)


def _json(name: str, *, nullable: bool) -> sa.Column:  # type: ignore[type-arg]
    kind = sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql')
    return sa.Column(name, kind, nullable=nullable)


def upgrade() -> None:
    op.create_table('exports',
    _id('id'),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    _json('request', nullable=False),
    _json('visible_owner_ids', nullable=True),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('file_key', sa.String(length=1024), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('started_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('finished_at', layers.db.base.UTCDateTime(), nullable=True),
    _id('workspace_id'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exports'))
    )
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index('ix_exports_list', ['workspace_id', 'id'], unique=False)

    op.create_table('import_rejects',
    _id('id'),
    _id('import_id'),
    sa.Column('row_number', sa.Integer(), nullable=False),
    _json('raw', nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    _id('workspace_id'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_rejects'))
    )
    with op.batch_alter_table('import_rejects', schema=None) as batch_op:
        batch_op.create_index('ix_import_rejects_row', ['workspace_id', 'import_id', 'row_number'], unique=True)

    op.create_table('imports',
    _id('id'),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source_key', sa.String(length=1024), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('delimiter', sa.String(length=1), nullable=True),
    _json('header', nullable=True),
    sa.Column('data_offset', sa.BigInteger(), nullable=True),
    _json('mapping', nullable=True),
    _json('options', nullable=False),
    sa.Column('byte_offset', sa.BigInteger(), nullable=False),
    sa.Column('rows_processed', sa.Integer(), nullable=False),
    sa.Column('created_count', sa.Integer(), nullable=False),
    sa.Column('updated_count', sa.Integer(), nullable=False),
    sa.Column('rejected_count', sa.Integer(), nullable=False),
    sa.Column('rejects_key', sa.String(length=1024), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('queued_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('started_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('finished_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    _id('workspace_id'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imports'))
    )
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.create_index('ix_imports_list', ['workspace_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_index('ix_imports_list')
    op.drop_table('imports')
    with op.batch_alter_table('import_rejects', schema=None) as batch_op:
        batch_op.drop_index('ix_import_rejects_row')
    op.drop_table('import_rejects')
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index('ix_exports_list')
    op.drop_table('exports')
