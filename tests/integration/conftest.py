"""The integration tier: the real MariaDB and Redis.

Outside CI, a missing server skips these tests with the reason; with CI=true it fails them, so CI
can never pass by skipping. Each xdist worker of each run gets its own uniquely named database,
migrated from scratch and dropped at the end (several runs may share the server).
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from layers.cache.client import use_redis
from layers.db.engine import make_engine, use_engine
from layers.db.migrate import upgrade
from tests.support.databases import scratch_database

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/crm_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the integration tier", pytrace=False)
    pytest.skip(f"{message}; start it or set TEST_DATABASE_URL / TEST_REDIS_URL")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A database of this run and xdist worker alone (a unique name, dropped at the end of the session)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        with scratch_database(DATABASE_URL, worker) as url:
            yield url
    except OperationalError as error:
        _unavailable("MariaDB/MySQL", error)


@pytest.fixture(scope="session")
def mariadb_engine(mariadb_url: str) -> Iterator[Engine]:
    engine = make_engine(mariadb_url, pool_size=8)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def real_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        _unavailable("Redis", error)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def real_stack(fake_redis: object, mariadb_engine: Engine, real_redis: redis.Redis) -> Iterator[None]:
    """Every integration test runs the app on MariaDB and Redis, then puts the embedded defaults back."""
    use_engine(mariadb_engine)
    use_redis(real_redis)
    yield
    use_redis(None)
    use_engine(None)
