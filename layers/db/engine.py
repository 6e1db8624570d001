"""Lazy engine and session factory: nothing connects at import time; tests swap them with `use_engine`."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import get_settings

_lock = threading.RLock()  # get_session_factory() calls get_engine() while holding it
_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        if ":memory:" not in url and url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "savepoint")
        def _sqlite_begin_before_savepoint(conn: Any, _name: str) -> None:
            # pysqlite sends BEGIN only before DML: a SAVEPOINT first would open the transaction itself,
            # and releasing it would COMMIT — a failure later in the unit of work could not roll it back.
            if not conn.connection.driver_connection.in_transaction:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # survives an RDS failover / idle disconnect without a failed request
        pool_recycle=1800,
        # Sessions and `with engine.connect()` blocks end their transactions themselves; the pool's own
        # ROLLBACK on return would be a second round trip per request for nothing.
        pool_reset_on_return=None,
        isolation_level="READ COMMITTED",
        connect_args={"charset": "utf8mb4", "connect_timeout": 5},
    )


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                settings = get_settings()
                _engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    return _engine


def get_session_factory() -> sessionmaker[Session]:
    global _session_factory
    if _session_factory is None:
        with _lock:
            if _session_factory is None:
                _session_factory = sessionmaker(bind=get_engine(), expire_on_commit=False, autoflush=True)
    return _session_factory


def use_engine(engine: Engine | None) -> None:
    """Point the layer at another engine (tests, CLI); None forgets it so settings decide again.
    The caller owns the engine it passes (and disposes it)."""
    global _engine, _session_factory
    with _lock:
        _engine = engine
        _session_factory = None
