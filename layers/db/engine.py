"""Lazy engine and session factory: nothing connects at import time; tests swap them with `use_engine`.

Each tier bounds how long the database may keep it waiting (DatabaseLimits): the api tier a few
seconds (`get_engine`), the worker longer (`crm worker`), migrations not at all (`crm migrate`).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from layers.db.availability import PROBE_TIMEOUT_SECONDS, Availability, availability_of, install
from layers.db.errors import Unavailability, unavailability
from shared.settings import Settings, get_settings

_lock = threading.RLock()  # get_session_factory() calls get_engine() while holding it
_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None

# The client's socket timeouts sit this far above the server's statement limit: a live server ends a
# long statement itself (a clean error, the connection kept), so only a frozen one runs into them.
SOCKET_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class DatabaseLimits:
    """How long the database may keep a caller waiting, in seconds (MySQL/MariaDB; SQLite ignores them)."""

    statement: float | None = None  # the server aborts longer statements and lock waits; None: no limit
    connect: float = 5.0
    pool: float = 30.0  # waiting for a free pooled connection

    @property
    def socket(self) -> float | None:
        """pymysql's read/write timeouts (also the handshake's): how long a frozen server can hold a call."""
        return None if self.statement is None else self.statement + SOCKET_MARGIN_SECONDS

    @classmethod
    def for_api(cls, settings: Settings) -> DatabaseLimits:
        return cls(settings.db_statement_timeout or None, settings.db_connect_timeout, settings.db_pool_timeout)

    @classmethod
    def for_worker(cls, settings: Settings) -> DatabaseLimits:
        return cls(settings.worker_db_statement_timeout or None, settings.db_connect_timeout, settings.db_pool_timeout)

    @classmethod
    def for_admin(cls, settings: Settings) -> DatabaseLimits:
        """Migrations and bulk loads: no statement limit (rebuilding a big table may take as long as it takes)."""
        return cls(None, settings.db_connect_timeout, settings.db_pool_timeout)


def session_limit_statement(server_version: str, limits: DatabaseLimits) -> str | None:
    """The SET that makes the server enforce `limits.statement` on a session, for this server's flavour.

    MariaDB's max_statement_time (seconds) covers every statement; MySQL's max_execution_time (ms)
    covers only SELECTs, so there the lock wait timeout is what bounds a write. The lock wait is only
    ever lowered (LEAST), never raised above the server's own setting."""
    if limits.statement is None:
        return None
    lock_wait = max(1, math.ceil(limits.statement))
    lower_lock_wait = f"innodb_lock_wait_timeout = LEAST(@@innodb_lock_wait_timeout, {lock_wait})"
    if "mariadb" in server_version.lower():
        return f"SET SESSION max_statement_time = {limits.statement:g}, {lower_lock_wait}"
    return f"SET SESSION max_execution_time = {max(1, round(limits.statement * 1000))}, {lower_lock_wait}"


def make_engine(url: str, *, pool_size: int = 10, limits: DatabaseLimits = DatabaseLimits()) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return _mysql_engine(url, pool_size, limits)


def _sqlite_engine(url: str) -> Engine:
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


def _mysql_engine(url: str, pool_size: int, limits: DatabaseLimits) -> Engine:
    connect_args: dict[str, Any] = {"charset": "utf8mb4", "connect_timeout": limits.connect}
    if limits.socket is not None:
        connect_args.update(read_timeout=limits.socket, write_timeout=limits.socket)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=limits.pool,
        pool_pre_ping=True,  # survives an RDS failover / idle disconnect without a failed request
        pool_recycle=1800,
        # Sessions and `with engine.connect()` blocks end their transactions themselves; the pool's own
        # ROLLBACK on return would be a second round trip per request for nothing.
        pool_reset_on_return=None,
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )
    availability = Availability(_probe(engine, connect_args))
    install(engine, availability)

    @event.listens_for(engine, "connect")
    def _limit_statements(dbapi_conn: Any, _: Any) -> None:
        statement = session_limit_statement(dbapi_conn.get_server_info(), limits)
        if statement is not None:
            cursor = dbapi_conn.cursor()
            cursor.execute(statement)
            cursor.close()

    @event.listens_for(engine, "handle_error")
    def _notice_unreachable(context: ExceptionContext) -> None:
        error = context.sqlalchemy_exception
        if context.is_disconnect or (error is not None and unavailability(error) is Unavailability.UNREACHABLE):
            availability.lost()

    @event.listens_for(engine, "do_connect")
    def _fail_fast_while_unreachable(*_: Any) -> None:
        availability.before_connect()  # returns None: SQLAlchemy then connects as usual

    return engine


def _probe(engine: Engine, connect_args: dict[str, Any]) -> Callable[[], None]:
    """Open and close a throwaway connection with short timeouts: the server's handshake is the answer."""
    dialect = engine.dialect  # not the engine: the availability registry holds engines weakly
    cargs, cparams = dialect.create_connect_args(engine.url)
    params = {**cparams, **connect_args, "connect_timeout": PROBE_TIMEOUT_SECONDS,
              "read_timeout": PROBE_TIMEOUT_SECONDS, "write_timeout": PROBE_TIMEOUT_SECONDS}

    def probe() -> None:
        dialect.connect(*cargs, **params).close()

    return probe


def get_engine() -> Engine:
    """The process's engine; unless an entry point chose another (`use_engine`), with the api tier's limits."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                settings = get_settings()
                _engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                                      limits=DatabaseLimits.for_api(settings))
    return _engine


def database_answers() -> bool:
    """Whether the database answers right now, within a probe's short timeouts (readiness, the worker)."""
    return availability_of(get_engine()).answers()


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
