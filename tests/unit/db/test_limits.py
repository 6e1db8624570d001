"""Each tier's database limits, and the session statement that makes the server enforce them."""
from __future__ import annotations

from layers.db.engine import SOCKET_MARGIN_SECONDS, DatabaseLimits, session_limit_statement
from shared.settings import Settings


def test_socket_timeouts_sit_just_above_the_statement_limit() -> None:
    # GIVEN a statement limit WHEN the socket timeout is derived THEN the server's limit ends a statement first
    assert DatabaseLimits(statement=5).socket == 5 + SOCKET_MARGIN_SECONDS
    # ... and without a statement limit nothing times out on the client either (migrations)
    assert DatabaseLimits(statement=None).socket is None


def test_each_tier_takes_its_own_statement_limit_from_the_settings() -> None:
    # GIVEN settings with both tiers' limits
    settings = Settings(DB_STATEMENT_TIMEOUT=4, WORKER_DB_STATEMENT_TIMEOUT=90, DB_CONNECT_TIMEOUT=1.5,
                        DB_POOL_TIMEOUT=3)
    # THEN the api tier, the worker and migrations each get theirs; connect and pool timeouts are shared
    assert DatabaseLimits.for_api(settings) == DatabaseLimits(statement=4, connect=1.5, pool=3)
    assert DatabaseLimits.for_worker(settings) == DatabaseLimits(statement=90, connect=1.5, pool=3)
    assert DatabaseLimits.for_admin(settings) == DatabaseLimits(statement=None, connect=1.5, pool=3)
    # ... and 0 switches a tier's limit off
    assert DatabaseLimits.for_api(Settings(DB_STATEMENT_TIMEOUT=0)).statement is None


def test_the_defaults_keep_requests_short_and_give_jobs_room() -> None:
    settings = Settings()
    api, worker = DatabaseLimits.for_api(settings), DatabaseLimits.for_worker(settings)
    assert api.statement is not None and worker.statement is not None
    assert api.statement <= 10 < worker.statement
    assert api.pool < 30  # never SQLAlchemy's default of 30 s waiting for a pooled connection


def test_mariadb_gets_max_statement_time_and_mysql_max_execution_time() -> None:
    limits = DatabaseLimits(statement=2.5)
    # GIVEN MariaDB's version string THEN seconds in max_statement_time, and the lock wait lowered to match
    mariadb = session_limit_statement("10.11.6-MariaDB-0+deb12u1", limits)
    assert mariadb == ("SET SESSION max_statement_time = 2.5, "
                       "innodb_lock_wait_timeout = LEAST(@@innodb_lock_wait_timeout, 3)")
    # GIVEN MySQL 8 THEN milliseconds in max_execution_time (SELECTs only: the lock wait bounds writes)
    mysql = session_limit_statement("8.0.36", limits)
    assert mysql == ("SET SESSION max_execution_time = 2500, "
                     "innodb_lock_wait_timeout = LEAST(@@innodb_lock_wait_timeout, 3)")
    # ... and with no limit nothing is set
    assert session_limit_statement("10.11.6-MariaDB", DatabaseLimits(statement=None)) is None
