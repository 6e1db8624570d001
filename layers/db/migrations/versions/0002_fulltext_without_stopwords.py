"""full-text indexes without stopwords

InnoDB leaves its default stopwords ("com", "www", "the", "will", "who", ...) out of FULLTEXT
indexes and matches nothing for them in boolean mode, so a search for "acme.com" or for a
contact called Will found no one. The stopword setting is fixed when an index is built, so
the indexes are rebuilt with it off. SQLite has no FULLTEXT index (search falls back to LIKE).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FULLTEXT = {
    "contacts": ("ix_contacts_fulltext", ["first_name", "last_name", "email", "job_title"]),
    "companies": ("ix_companies_fulltext", ["name", "domain", "industry"]),
}


def _rebuild(*, stopwords: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    previous = bind.exec_driver_sql("SELECT @@SESSION.innodb_ft_enable_stopword").scalar()
    bind.exec_driver_sql(f"SET SESSION innodb_ft_enable_stopword = {int(stopwords)}")
    try:
        for table, (name, columns) in FULLTEXT.items():
            op.drop_index(name, table_name=table)
            op.create_index(name, table, columns, mysql_prefix="FULLTEXT")
    finally:  # the connection goes back to the pool: leave the session as it was
        bind.exec_driver_sql(f"SET SESSION innodb_ft_enable_stopword = {int(previous)}")


def upgrade() -> None:
    _rebuild(stopwords=False)


def downgrade() -> None:
    _rebuild(stopwords=True)
