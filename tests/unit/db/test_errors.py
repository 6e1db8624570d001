"""Which database errors mean "cannot serve now" (503 + Retry-After), by driver error code."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from layers.db.errors import DatabaseUnreachable, Unavailability, service_unavailable, unavailability


def _wrapped(code: int, message: str = "x", *, invalidated: bool = False) -> DBAPIError:
    return OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, message),
                            connection_invalidated=invalidated)


@pytest.mark.parametrize(("code", "kind"), [
    (2003, Unavailability.UNREACHABLE),  # refused / connect timeout
    (2013, Unavailability.UNREACHABLE),  # lost, or the read timeout ran out
    (2006, Unavailability.UNREACHABLE),  # gone away
    (1053, Unavailability.UNREACHABLE),  # shutting down
    (1040, Unavailability.BUSY),  # too many connections
    (1290, Unavailability.BUSY),  # read-only (a failover demoted the writer)
    (1969, Unavailability.TIMED_OUT),  # MariaDB max_statement_time
    (3024, Unavailability.TIMED_OUT),  # MySQL max_execution_time
    (1205, Unavailability.CONTENDED),  # lock wait timeout
    (1213, Unavailability.CONTENDED),  # deadlock
])
def test_driver_errors_that_mean_the_database_cannot_serve_now(code: int, kind: Unavailability) -> None:
    # GIVEN the driver's error wrapped as SQLAlchemy raises it WHEN it is classified THEN it has its kind
    assert unavailability(_wrapped(code)) is kind


def test_the_answer_is_a_503_with_retry_after_and_no_internals() -> None:
    # GIVEN a connection refused, with the server's address in the driver's message
    error = _wrapped(2003, "Can't connect to MySQL server on 'db.internal' ([Errno 111] Connection refused)")
    # WHEN it is translated
    problem = service_unavailable(error)
    # THEN 503 + Retry-After, and nothing of the message reaches the client
    assert problem is not None and problem.status == 503
    assert problem.headers["Retry-After"] == "1"
    assert "db.internal" not in problem.detail and "Errno" not in problem.detail


@pytest.mark.parametrize("error", [
    ProgrammingError("SELEC 1", {}, pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax")),
    IntegrityError("INSERT", {}, pymysql.err.IntegrityError(1062, "Duplicate entry")),
    OperationalError("SELECT", {}, pymysql.err.OperationalError(1054, "Unknown column")),
    ValueError(2003),  # an int first argument alone is not a driver error
    KeyError("database"),
])
def test_programming_errors_stay_errors(error: BaseException) -> None:
    # GIVEN errors that a retry cannot fix WHEN they are classified THEN they are not "unavailable" (they stay 500s)
    assert unavailability(error) is None
    assert service_unavailable(error) is None


def test_the_breaker_refusal_a_disconnect_and_a_pool_timeout_are_unavailable() -> None:
    assert unavailability(DatabaseUnreachable("away")) is Unavailability.UNREACHABLE
    # a code not in the table, on a connection the dialect saw die
    assert unavailability(_wrapped(9999, invalidated=True)) is Unavailability.UNREACHABLE
    assert unavailability(PoolTimeout("QueuePool limit of size 10 overflow 10 reached")) is Unavailability.BUSY


def test_a_locked_sqlite_database_is_contention(tmp_path: Path) -> None:
    # GIVEN a SQLite file another connection holds the write lock on
    holder = sqlite3.connect(tmp_path / "crm.db", isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{tmp_path}/crm.db", connect_args={"timeout": 0})
    try:
        # WHEN a write waits for it no longer than its busy timeout
        with pytest.raises(OperationalError) as raised, engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
        # THEN the real "database is locked" error is contention: 503 + Retry-After
        assert unavailability(raised.value) is Unavailability.CONTENDED
    finally:
        engine.dispose()
        holder.close()
