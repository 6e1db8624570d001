"""custom field values, deliberate duplicates, merge pointers on contacts and companies

Uniqueness moves from `email`/`domain` to `email_key`/`domain_key`: equal to the value for normal
records, NULL for a duplicate the client asked for, so the constraint still guards all the others.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 00:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(length=26).with_variant(mysql.CHAR(charset="ascii", collation="ascii_bin", length=26), "mysql", "mariadb")
JSON = sa.JSON().with_variant(mysql.JSON(), "mysql", "mariadb")
TABLES = {
    "contacts": ("email", "email_key", sa.String(length=320), ["ix_contacts_email", "ix_contacts_phone"]),
    "companies": ("domain", "domain_key", sa.String(length=253), ["ix_companies_domain"]),
}


def upgrade() -> None:
    for table, (field, key, key_type, _) in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("custom", JSON, nullable=True))
            batch.add_column(sa.Column(key, key_type, nullable=True))
            batch.add_column(sa.Column("merged_into_id", ID, nullable=True))
        op.execute(f"UPDATE {table} SET custom = '{{}}', {key} = {field}")  # noqa: S608 - constants
        with op.batch_alter_table(table) as batch:
            batch.alter_column("custom", existing_type=JSON, nullable=False)
            batch.drop_constraint(f"uq_{table}_workspace_id_{field}", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_workspace_id_{key}", ["workspace_id", key])
        op.create_index(f"ix_{table}_{field}", table, ["workspace_id", field])
    op.create_index("ix_contacts_phone", "contacts", ["workspace_id", "phone"])
    op.create_table(
        "custom_unique_values",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("field_id", ID, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_unique_values")),
        sa.UniqueConstraint("workspace_id", "field_id", "value",
                            name=op.f("uq_custom_unique_values_workspace_id_field_id_value")),
    )
    op.create_index("ix_custom_unique_values_record", "custom_unique_values", ["workspace_id", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_custom_unique_values_record", table_name="custom_unique_values")
    op.drop_table("custom_unique_values")
    op.drop_index("ix_contacts_phone", table_name="contacts")
    for table, (field, key, _, _) in TABLES.items():
        op.drop_index(f"ix_{table}_{field}", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_workspace_id_{key}", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_workspace_id_{field}", ["workspace_id", field])
            batch.drop_column("merged_into_id")
            batch.drop_column(key)
            batch.drop_column("custom")
