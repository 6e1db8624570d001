"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 22:55:45.723917
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import layers.db.base

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('companies',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=True),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('employee_count', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('archived_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_companies')),
    sa.UniqueConstraint('workspace_id', 'domain', name=op.f('uq_companies_workspace_id_domain'))
    )
    with op.batch_alter_table('companies', schema=None) as batch_op:
        batch_op.create_index('ix_companies_created', ['workspace_id', 'created_at'], unique=False)
        batch_op.create_index('ix_companies_fulltext', ['name', 'domain', 'industry'], unique=False, mysql_prefix='FULLTEXT')
        batch_op.create_index('ix_companies_list', ['workspace_id', 'archived_at', 'id'], unique=False)
        batch_op.create_index('ix_companies_name', ['workspace_id', 'name'], unique=False)

    op.create_table('contacts',
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('job_title', sa.String(length=150), nullable=True),
    sa.Column('lifecycle_stage', sa.String(length=16), nullable=True),
    sa.Column('owner_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=True),
    sa.Column('company_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('archived_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('workspace_id', 'email', name=op.f('uq_contacts_workspace_id_email'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index('ix_contacts_company', ['workspace_id', 'company_id', 'id'], unique=False)
        batch_op.create_index('ix_contacts_created', ['workspace_id', 'created_at'], unique=False)
        batch_op.create_index('ix_contacts_fulltext', ['first_name', 'last_name', 'email', 'job_title'], unique=False, mysql_prefix='FULLTEXT')
        batch_op.create_index('ix_contacts_last_name', ['workspace_id', 'last_name'], unique=False)
        batch_op.create_index('ix_contacts_list', ['workspace_id', 'archived_at', 'id'], unique=False)
        batch_op.create_index('ix_contacts_owner', ['workspace_id', 'owner_id'], unique=False)

    op.create_table('field_history',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('old_value', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('new_value', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('changed_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_field_history'))
    )
    with op.batch_alter_table('field_history', schema=None) as batch_op:
        batch_op.create_index('ix_field_history_record', ['workspace_id', 'object_type', 'record_id', 'id'], unique=False)

    op.create_table('outbox_events',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('occurred_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('published_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events'))
    )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_events_unpublished', ['published_at', 'id'], unique=False)
        batch_op.create_index('ix_outbox_events_workspace_id_id', ['workspace_id', 'id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('firebase_uid', sa.String(length=128), nullable=True),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('firebase_uid', name=op.f('uq_users_firebase_uid'))
    )
    op.create_table('workspaces',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workspaces'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(mysql.JSON(), 'mariadb').with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', layers.db.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_api_keys_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index('ix_api_keys_workspace_id_id', ['workspace_id', 'id'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('workspace_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('user_id', sa.String(length=26).with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mariadb').with_variant(mysql.CHAR(charset='ascii', collation='ascii_bin', length=26), 'mysql'), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', layers.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_memberships_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('workspace_id', 'user_id', name=op.f('uq_memberships_workspace_id_user_id'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_user_id', ['user_id'], unique=False)




def downgrade() -> None:
    # No DROP INDEX before these two DROP TABLEs: MySQL/MariaDB refuse to drop an index a foreign
    # key needs (error 1553), and dropping the table drops its indexes anyway.
    op.drop_table('memberships')
    op.drop_table('api_keys')
    op.drop_table('workspaces')
    op.drop_table('users')
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_workspace_id_id')
        batch_op.drop_index('ix_outbox_events_unpublished')

    op.drop_table('outbox_events')
    with op.batch_alter_table('field_history', schema=None) as batch_op:
        batch_op.drop_index('ix_field_history_record')

    op.drop_table('field_history')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_owner')
        batch_op.drop_index('ix_contacts_list')
        batch_op.drop_index('ix_contacts_last_name')
        batch_op.drop_index('ix_contacts_fulltext', mysql_prefix='FULLTEXT')
        batch_op.drop_index('ix_contacts_created')
        batch_op.drop_index('ix_contacts_company')

    op.drop_table('contacts')
    with op.batch_alter_table('companies', schema=None) as batch_op:
        batch_op.drop_index('ix_companies_name')
        batch_op.drop_index('ix_companies_list')
        batch_op.drop_index('ix_companies_fulltext', mysql_prefix='FULLTEXT')
        batch_op.drop_index('ix_companies_created')

    op.drop_table('companies')

