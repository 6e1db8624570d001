"""Alembic environment: the metadata of every capability's models, on the configured engine."""
from __future__ import annotations

import importlib
from typing import Any

from alembic import context

from layers.db.base import Base
from layers.db.engine import get_engine


def _import_models() -> None:
    """Register every table on Base.metadata: each capability's models.py and the layers' own tables."""
    import pkgutil
    from pathlib import Path

    import functions

    for package in pkgutil.iter_modules(functions.__path__):
        if (Path(functions.__path__[0]) / package.name / "models.py").exists():
            importlib.import_module(f"functions.{package.name}.models")
    for module in ("layers.records.history", "layers.records.custom", "layers.queue.outbox",
                   "layers.queue.receipts", "layers.cache.invalidations", "layers.db.idempotency"):
        importlib.import_module(module)


_import_models()
target_metadata = Base.metadata


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
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,  # type: ignore[arg-type]
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
