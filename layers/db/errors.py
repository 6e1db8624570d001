"""Which database errors mean "the database cannot serve this right now", typed once for every tier.

A request that meets one answers 503 + Retry-After (the error middleware asks `service_unavailable`);
a job that meets one fails and is left to the queue, and the worker takes no more work while the
database is unreachable. Every other error (a programming error, a constraint the code did not expect)
stays what it is: a logged 500, or a failed job.

Errors are told apart by the driver's error code, never by their text:

- unreachable: the server refused, dropped or never answered the connection, or is shutting down
  (also the availability breaker's own DatabaseUnreachable);
- busy: no free pooled connection, too many connections, or a read-only server mid-failover;
- timed out: the statement ran into the server-side statement limit (or was killed);
- contended: a lock wait timeout or a deadlock.

Lock wait timeouts and deadlocks answer 503 + Retry-After instead of being retried in the process: the
server has already rolled the statement (a deadlock: the whole transaction) back, so nothing was
written, and the client — who may hold an Idempotency-Key — is the one that can retry the whole request
safely. Re-running a handler in the middleware would re-run its non-database effects and add latency no
one bounded, and retrying inside a hot spot makes the contention worse.
"""
from __future__ import annotations

import enum
import sqlite3

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.errors import ServiceUnavailable


class DatabaseUnreachable(SQLAlchemyError):
    """The database is known to be away: a new connection was refused without trying (availability.py)."""


class Unavailability(enum.Enum):
    UNREACHABLE = "unreachable"
    BUSY = "busy"
    TIMED_OUT = "timed_out"
    CONTENDED = "contended"


# MySQL/MariaDB error codes (client CR_* and server ER_*).
_BY_CODE: dict[int, Unavailability] = {
    2002: Unavailability.UNREACHABLE,  # CR_CONNECTION_ERROR
    2003: Unavailability.UNREACHABLE,  # CR_CONN_HOST_ERROR: refused, or connect timed out
    2005: Unavailability.UNREACHABLE,  # CR_UNKNOWN_HOST: the endpoint's DNS name moves during a failover
    2006: Unavailability.UNREACHABLE,  # CR_SERVER_GONE_ERROR
    2013: Unavailability.UNREACHABLE,  # CR_SERVER_LOST: dropped, or the read timeout ran out
    2055: Unavailability.UNREACHABLE,  # CR_SERVER_LOST_EXTENDED
    1053: Unavailability.UNREACHABLE,  # ER_SERVER_SHUTDOWN
    1927: Unavailability.UNREACHABLE,  # ER_CONNECTION_KILLED (MariaDB)
    4031: Unavailability.UNREACHABLE,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
    1040: Unavailability.BUSY,  # ER_CON_COUNT_ERROR: too many connections
    1203: Unavailability.BUSY,  # ER_TOO_MANY_USER_CONNECTIONS
    1290: Unavailability.BUSY,  # ER_OPTION_PREVENTS_STATEMENT: --read-only, a writer demoted by a failover
    1836: Unavailability.BUSY,  # ER_READ_ONLY_MODE
    1969: Unavailability.TIMED_OUT,  # ER_STATEMENT_TIMEOUT: MariaDB max_statement_time
    3024: Unavailability.TIMED_OUT,  # ER_QUERY_TIMEOUT: MySQL max_execution_time
    1317: Unavailability.TIMED_OUT,  # ER_QUERY_INTERRUPTED: KILL QUERY
    1205: Unavailability.CONTENDED,  # ER_LOCK_WAIT_TIMEOUT
    1213: Unavailability.CONTENDED,  # ER_LOCK_DEADLOCK
}
_SQLITE_CONTENDED = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}

_DETAIL = {
    Unavailability.UNREACHABLE: "the database is not answering; retry shortly",
    Unavailability.BUSY: "the database cannot take this request right now; retry shortly",
    Unavailability.TIMED_OUT: "the database did not finish this request in time; retry shortly",
    Unavailability.CONTENDED: "the records are being changed by another request; retry",
}
RETRY_AFTER_SECONDS = 1


def unavailability(error: BaseException) -> Unavailability | None:
    """Why `error` means the database cannot serve now, or None when it means something else."""
    if isinstance(error, DatabaseUnreachable):
        return Unavailability.UNREACHABLE
    if isinstance(error, PoolTimeout):
        return Unavailability.BUSY
    if not isinstance(error, DBAPIError):
        return None
    original = error.orig
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        return Unavailability.CONTENDED if code is not None and code & 0xFF in _SQLITE_CONTENDED else None
    args = getattr(original, "args", ())
    kind = _BY_CODE.get(args[0]) if args and isinstance(args[0], int) else None
    if kind is None and error.connection_invalidated:  # the dialect saw a disconnect the codes above miss
        return Unavailability.UNREACHABLE
    return kind


class DatabaseUnavailable(ServiceUnavailable):
    """503 + Retry-After: the database could not serve the request; `reason` says how (logs, metrics)."""

    def __init__(self, reason: Unavailability) -> None:
        super().__init__(_DETAIL[reason], headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.reason = reason


def service_unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """The 503 a request answers when `error` means the database cannot serve now; None otherwise."""
    reason = unavailability(error)
    return None if reason is None else DatabaseUnavailable(reason)
