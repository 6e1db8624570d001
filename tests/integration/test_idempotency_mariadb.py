"""Idempotency-Key on MariaDB and Redis: concurrent copies of one keyed request take effect once, whether
Redis coordinates them, is away, or lost the first copy's lease while it was still running."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from sqlalchemy import event, text

from layers.cache.client import make_client, use_redis
from layers.db.engine import get_engine, make_engine, use_engine
from shared.ids import new_id
from tests.integration.wsgi_client import call
from tests.support.api import Api, Reply

ROUNDS = 3


def _together(count: int, action: Callable[[int], Reply]) -> list[Reply]:
    barrier = threading.Barrier(count)

    def run(i: int) -> Reply:
        barrier.wait(timeout=10)
        return action(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _count(sql: str, **params: Any) -> int:
    with get_engine().connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def _effects(api: Api, first_name: str) -> tuple[int, int, int]:
    """(contacts with this name, contact.created events for them, the workspace's idempotency records)."""
    contacts = _count("SELECT COUNT(*) FROM contacts WHERE workspace_id = :w AND first_name = :n",
                      w=api.workspace_id, n=first_name)
    events = _count("SELECT COUNT(*) FROM outbox_events e JOIN contacts c ON c.id = e.record_id "
                    "WHERE c.workspace_id = :w AND c.first_name = :n AND e.event_type = 'contact.created'",
                    w=api.workspace_id, n=first_name)
    records = _count("SELECT COUNT(*) FROM idempotency_records WHERE owner = :w", w=api.workspace_id)
    return contacts, events, records


@pytest.fixture
def redis_down() -> Iterator[None]:
    """Redis unreachable: the production client, pointed at a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = make_client(f"redis://127.0.0.1:{port}/0")
    use_redis(dead)
    yield
    dead.close()


@pytest.mark.usefixtures("redis_down")
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_without_redis_concurrent_copies_of_a_keyed_create_take_effect_once(api: Api, round_: int) -> None:
    # GIVEN Redis is away, and four copies of one keyed create (no unique field: nothing else would stop a
    # second contact) sent at the same instant
    first_name = f"Copy {new_id()}"
    headers = {"Idempotency-Key": f"key-{new_id()}"}
    replies = _together(4, lambda i: call(api, "POST", "/v1/contacts", {"first_name": first_name}, headers=headers))

    # THEN the database's unique key let one commit; every other copy rolled back and replays its answer
    assert [r.status for r in replies] == [201] * 4, [(r.status, r.json) for r in replies]
    original = [r for r in replies if r.header("Idempotent-Replayed") is None]
    assert len(original) == 1
    assert all(r.json == original[0].json for r in replies)
    assert _effects(api, first_name) == (1, 1, 1)


def test_a_committed_request_whose_answer_never_reached_redis_is_replayed(api: Api, real_redis: redis.Redis) -> None:
    # GIVEN a keyed create that committed, whose process died before Redis had its answer (its lease lapsed)
    first_name = f"Lost {new_id()}"
    headers = {"Idempotency-Key": f"key-{new_id()}"}
    first = call(api, "POST", "/v1/contacts", {"first_name": first_name}, headers=headers)
    real_redis.delete(f"idem:{api.workspace_id}:{headers['Idempotency-Key']}")
    # WHEN the client retries
    retry = call(api, "POST", "/v1/contacts", {"first_name": first_name}, headers=headers)
    # THEN the database's record answers: a replay, and still one contact, one event, one record
    assert first.status == 201 and retry.status == 201, retry.json
    assert retry.header("Idempotent-Replayed") == "true" and retry.json == first.json
    assert _effects(api, first_name) == (1, 1, 1)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_copies_with_redis_up_take_effect_once(api: Api, round_: int) -> None:
    # GIVEN four copies of one keyed create sent at the same instant, Redis coordinating
    first_name = f"Copy {new_id()}"
    headers = {"Idempotency-Key": f"key-{new_id()}"}
    replies = _together(4, lambda i: call(api, "POST", "/v1/contacts", {"first_name": first_name}, headers=headers))

    # THEN one ran; the others replayed it or were told it is still running (409, Retry-After)
    assert {r.status for r in replies} <= {201, 409}, [(r.status, r.json) for r in replies]
    assert sum(1 for r in replies if r.status == 201 and r.header("Idempotent-Replayed") is None) == 1
    assert all(r.header("Retry-After") for r in replies if r.status == 409)
    assert _effects(api, first_name) == (1, 1, 1)


class HeldBeforeRecord:
    """A test engine's hook: the first INSERT of an idempotency record waits for `release`, so the request that
    sends it stays inside its open transaction, effects flushed, until the test lets it go."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO idempotency_records") and not self.reached.is_set():
            self.reached.set()
            self.release.wait(timeout=30)


@pytest.fixture
def held_engine(mariadb_url: str) -> Iterator[HeldBeforeRecord]:
    engine = make_engine(mariadb_url, pool_size=4)
    hold = HeldBeforeRecord()
    event.listen(engine, "before_cursor_execute", hold)
    use_engine(engine)
    yield hold
    hold.release.set()
    use_engine(None)
    engine.dispose()


def test_a_copy_that_runs_after_the_first_ones_lease_expired_does_not_take_effect_twice(
        api: Api, held_engine: HeldBeforeRecord, real_redis: redis.Redis) -> None:
    # GIVEN a keyed create held inside its transaction just before it writes the key's record, whose lease
    # then expired (a process that hung longer than the lease)
    first_name = f"Slow {new_id()}"
    headers = {"Idempotency-Key": f"key-{new_id()}"}
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(call, api, "POST", "/v1/contacts", {"first_name": first_name}, headers=headers)
        try:
            assert held_engine.reached.wait(timeout=30), "the first request never reached its record"
            real_redis.delete(f"idem:{api.workspace_id}:{headers['Idempotency-Key']}")
            # WHEN the client's retry runs meanwhile, and commits first
            retry = call(api, "POST", "/v1/contacts", {"first_name": first_name}, headers=headers)
        finally:
            held_engine.release.set()
        first = slow.result(timeout=60)
    # THEN the first copy found the key's record taken: it rolled back and replays the retry's answer;
    # one contact, one event, one record
    assert retry.status == 201 and retry.header("Idempotent-Replayed") is None, retry.json
    assert first.status == 201 and first.header("Idempotent-Replayed") == "true", first.json
    assert first.json == retry.json
    assert _effects(api, first_name) == (1, 1, 1)
