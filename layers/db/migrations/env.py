"""Alembic environment, on the configured engine (or the connection the caller passes).

The models' metadata comes from the caller (`config.attributes["target_metadata"]`, as layers/db/migrate.py's
`autogenerate` sets it): a layer does not import the capabilities whose tables it migrates. Running migrations
does not need it; autogenerate does, and Alembic refuses to autogenerate without it.
"""
from __future__ import annotations

from typing import Any

from alembic import context

from layers.db.engine import get_engine


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with get_engine().connect() as connection:
        _run(connection)


def _run(connection: Any) -> None:
    if connection.dialect.name in ("mysql", "mariadb"):
        # A table rebuild (ADD COLUMN, ...) rebuilds its FULLTEXT indexes with the session's stopword
        # setting; keep stopwords out of every index (see 0002), whatever a migration alters.
        connection.exec_driver_sql("SET SESSION innodb_ft_enable_stopword = 0")
    context.configure(connection=connection, target_metadata=context.config.attributes.get("target_metadata"),
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
