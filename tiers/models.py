"""Every table the system has, on one MetaData: what migrations are generated and checked against.

It lives here, beside the composition root, because it must import every capability: the migrations
environment (layers/db) is handed the result instead of reaching up into functions/.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from sqlalchemy import MetaData

import functions
from layers.db.base import Base

LAYER_TABLES = ("layers.records.history", "layers.records.custom", "layers.queue.outbox",
                "layers.queue.receipts", "layers.cache.invalidations", "layers.db.idempotency")


def load_all_models() -> MetaData:
    """Import each capability's models.py and the layers' own tables; their tables register on Base.metadata."""
    for package in pkgutil.iter_modules(functions.__path__):
        if (Path(functions.__path__[0]) / package.name / "models.py").exists():
            importlib.import_module(f"functions.{package.name}.models")
    for module in LAYER_TABLES:
        importlib.import_module(module)
    return Base.metadata
