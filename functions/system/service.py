"""Readiness checks: the database and Redis answer."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from layers.cache.client import ping
from layers.db.engine import get_engine


def readiness() -> dict[str, bool]:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        database = True
    except SQLAlchemyError:
        database = False
    return {"database": database, "redis": ping()}
