"""MariaDB frozen (a paused or wedged server) or cut (a killed one), through the FaultProxy between the
app and the real server (tests/support/faults.py: the shared server itself is never touched).

Requests that need the database answer 503 problem+json with Retry-After and *return* — no hang, no
500; readiness answers 503 naming the dependency; a write refused by a lock or the statement limit
leaves nothing behind; and once the server answers again everything recovers by itself. No assertion
depends on speed: a request must return within a generous outer deadline, recovery is polled for.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from layers.cache.client import use_redis
from layers.db.engine import DatabaseLimits, get_engine, make_engine, use_engine
from layers.db.errors import Unavailability, unavailability
from tests.integration.wsgi_client import call
from tests.support.api import Api, Reply, provision
from tests.support.faults import FaultProxy

STATEMENT_SECONDS = 1.0  # the server's limit; the client's socket timeouts sit a second above it
OUTER_DEADLINE_SECONDS = 20.0
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def database(mariadb_url: str, mariadb_engine: Engine) -> Iterator[FaultProxy]:
    """The app's engine reaches this run's database through a FaultProxy, with short limits."""
    url = make_url(mariadb_url)
    proxy = FaultProxy(url.host or "127.0.0.1", url.port or 3306)
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                         pool_size=4, limits=DatabaseLimits(statement=STATEMENT_SECONDS, connect=1, pool=1))
    previous = get_engine()
    use_engine(engine)
    yield proxy
    proxy.resume()
    use_engine(previous)
    engine.dispose()
    proxy.close()


@pytest.fixture
def api(database: FaultProxy) -> Api:
    return provision()


def _answered(request: Callable[[], Reply]) -> tuple[Reply, float]:
    """Run `request` in a thread: it must return within the outer deadline. Returns it and its seconds."""
    outcome: list[Any] = []

    def run() -> None:
        started = time.monotonic()
        try:
            outcome.append((request(), time.monotonic() - started))
        except BaseException as error:  # re-raised below, in the test's thread
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(OUTER_DEADLINE_SECONDS)
    assert not thread.is_alive(), f"the request did not return within {OUTER_DEADLINE_SECONDS} s"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]  # type: ignore[no-any-return]


def _assert_503(reply: Reply) -> None:
    assert reply.status == 503, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.header("Retry-After") == "1"
    assert reply.json["status"] == 503 and reply.json["type"] == "urn:crm:problem:service-unavailable"


def _until_ok(request: Callable[[], Reply], what: str) -> float:
    """Poll `request` until it answers 200; returns how long that took after the call."""
    started = time.monotonic()
    while True:
        reply, _ = _answered(request)
        if reply.status == 200:
            return time.monotonic() - started
        assert reply.status == 503, reply.raw
        assert time.monotonic() - started < OUTER_DEADLINE_SECONDS, f"{what} did not recover"
        time.sleep(0.05)


def test_a_frozen_database_answers_503_and_recovers_by_itself(api: Api, database: FaultProxy) -> None:
    # GIVEN a working API whose pool holds live connections
    assert call(api, "GET", "/v1/contacts").status == 200
    # WHEN the database freezes (connections stay open, nothing answers)
    database.freeze()
    first, first_seconds = _answered(lambda: call(api, "GET", "/v1/contacts"))
    again, again_seconds = _answered(lambda: call(api, "GET", "/v1/contacts"))
    write, _ = _answered(lambda: call(api, "POST", "/v1/contacts", {"email": "frozen@example.com"}))
    # THEN every request returns, as 503 + Retry-After problem+json
    for reply in (first, again, write):
        _assert_503(reply)
    # ... and once the database answers again, requests succeed without anyone restarting anything
    database.resume()
    recovered = _until_ok(lambda: call(api, "GET", "/v1/contacts"), "the API")
    print(f"frozen: first 503 after {first_seconds:.2f} s, next after {again_seconds:.2f} s; "
          f"recovered {recovered:.2f} s after resume")
    # ... and the refused write left nothing behind
    assert call(api, "GET", "/v1/contacts").json["data"] == []


def test_a_killed_database_answers_503_and_recovers_by_itself(api: Api, database: FaultProxy) -> None:
    # GIVEN a working API WHEN the database is killed (connections closed, new ones refused)
    assert call(api, "GET", "/v1/contacts").status == 200
    database.cut()
    # THEN reads and writes answer 503 + Retry-After
    _assert_503(_answered(lambda: call(api, "GET", "/v1/contacts"))[0])
    _assert_503(_answered(lambda: call(api, "POST", "/v1/contacts", {"email": "cut@example.com"}))[0])
    # ... and when it is back, the pool reconnects by itself
    database.resume()
    recovered = _until_ok(lambda: call(api, "GET", "/v1/contacts"), "the API")
    print(f"killed: recovered {recovered:.2f} s after the server was back")
    assert call(api, "GET", "/v1/contacts").json["data"] == []


def test_a_restart_between_requests_costs_no_failed_request(api: Api, database: FaultProxy) -> None:
    # GIVEN pooled connections WHEN the server restarts while no request runs (every connection dropped)
    assert call(api, "GET", "/v1/contacts").status == 200
    database.cut()
    database.resume()
    # THEN the next request finds its dead connection on checkout, reconnects, and succeeds
    reply, _ = _answered(lambda: call(api, "GET", "/v1/contacts"))
    assert reply.status == 200, reply.raw


def test_the_server_aborts_a_statement_over_the_limit(database: FaultProxy) -> None:
    # GIVEN a connection of the limited engine: its session carries the statement limit and a lowered lock wait
    with get_engine().connect() as connection:
        limit, lock_wait = connection.execute(text("SELECT @@max_statement_time, @@innodb_lock_wait_timeout")).one()
        assert float(limit) == STATEMENT_SECONDS and int(lock_wait) <= STATEMENT_SECONDS
        # WHEN a statement runs past it
        with pytest.raises(OperationalError) as raised:
            connection.execute(text("SELECT SLEEP(5)"))
        # THEN the server aborted it (a statement timeout, not a lost connection), and the connection lives on
        assert unavailability(raised.value) is Unavailability.TIMED_OUT
        connection.rollback()
        assert connection.execute(text("SELECT 1")).scalar_one() == 1


def test_a_write_blocked_by_a_lock_answers_503_and_changes_nothing(
    api: Api, database: FaultProxy, mariadb_engine: Engine
) -> None:
    # GIVEN a contact whose row another transaction holds locked
    created = call(api, "POST", "/v1/contacts", {"email": "locked@example.com"})
    assert created.status == 201
    contact_id = created.json["id"]
    with mariadb_engine.connect() as holder:
        holder.execute(text("SELECT id FROM contacts WHERE id = :id FOR UPDATE"), {"id": contact_id})
        # WHEN a PATCH of it waits for the lock longer than the limits allow
        patched, _ = _answered(lambda: call(api, "PATCH", f"/v1/contacts/{contact_id}",
                                            {"email": "changed@example.com"}))
        holder.rollback()
    # THEN it answers 503 + Retry-After, and nothing of it was written
    _assert_503(patched)
    after = call(api, "GET", f"/v1/contacts/{contact_id}")
    assert after.json["email"] == "locked@example.com" and after.header("ETag") == '"v1"'
    history = call(api, "GET", f"/v1/contacts/{contact_id}/history").json["data"]
    assert {entry["action"] for entry in history} == {"created"}
    # ... and the retry succeeds once the lock is gone
    assert call(api, "PATCH", f"/v1/contacts/{contact_id}", {"email": "changed@example.com"}).status == 200


def test_ready_answers_503_while_the_database_is_frozen(api: Api, database: FaultProxy) -> None:
    # GIVEN the database frozen WHEN readiness is asked
    database.freeze()
    ready, seconds = _answered(lambda: call(api, "GET", "/ready"))
    # THEN it returns 503 naming the database; Redis is fine
    assert ready.status == 503
    assert ready.json["checks"] == {"database": False, "redis": True}
    assert (ready.header("Content-Type") or "").startswith("application/problem+json")
    database.resume()
    recovered = _until_ok(lambda: call(api, "GET", "/ready"), "readiness")
    print(f"/ready with the database frozen answered in {seconds:.2f} s; 200 again {recovered:.2f} s after resume")


def test_ready_answers_503_while_redis_is_frozen(api: Api) -> None:
    # GIVEN the app's Redis reached through a FaultProxy, then frozen
    url = make_url(REDIS_URL.replace("redis://", "mysql://", 1))  # only host/port/db are read
    proxy = FaultProxy(url.host or "127.0.0.1", url.port or 6379)
    client = redis.Redis(host="127.0.0.1", port=proxy.port, db=int(url.database or 0), decode_responses=True,
                         socket_timeout=0.5, socket_connect_timeout=0.5)
    use_redis(client)
    try:
        assert call(api, "GET", "/ready").status == 200
        proxy.freeze()
        # WHEN readiness is asked
        ready, seconds = _answered(lambda: call(api, "GET", "/ready"))
        # THEN it returns 503 naming Redis (whatever the client's own retries would cost)
        assert ready.status == 503
        assert ready.json["checks"] == {"database": True, "redis": False}
        assert (ready.header("Content-Type") or "").startswith("application/problem+json")
        proxy.resume()
        recovered = _until_ok(lambda: call(api, "GET", "/ready"), "readiness")
        print(f"/ready with Redis frozen answered in {seconds:.2f} s; 200 again {recovered:.2f} s after resume")
    finally:
        proxy.resume()
        client.close()
        proxy.close()
