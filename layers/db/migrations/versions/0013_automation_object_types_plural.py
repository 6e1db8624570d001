"""automation rules name their object type as the rest of the API does: plural (`contacts`, not `contact`)

Revision ID: 0013
Revises: 0012

Rules stored before used the singular. Each one rewritten moves its version on: its body changed, so an
ETag taken before must not be answered 304 with the old spelling, nor an If-Match on it succeed.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

PLURAL_OF = {"contact": "contacts", "company": "companies", "deal": "deals", "activity": "activities"}
_rules = sa.table("automation_rules", sa.column("object_type", sa.String(16)), sa.column("version", sa.Integer()))


def upgrade() -> None:
    for singular, plural in PLURAL_OF.items():
        op.execute(_rules.update().where(_rules.c.object_type == singular)
                   .values(object_type=plural, version=_rules.c.version + 1))


def downgrade() -> None:
    for singular, plural in PLURAL_OF.items():
        op.execute(_rules.update().where(_rules.c.object_type == plural)
                   .values(object_type=singular, version=_rules.c.version + 1))
