"""No stale read after an acknowledged write, whatever Redis does: paused (SIGSTOP, its old entries
intact), partitioned, slowed past the client's timeout, or killed — on the real MariaDB and a real
redis-server of the test's own. Several server processes are played by several epoch trackers (each
process has its own), all on the real ledger in MariaDB and the real clock: however slow this machine
is, a stale read can only come from a bug, never from timing."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from layers.cache import invalidations
from layers.cache.client import make_client, use_redis
from layers.cache.invalidations import EpochTracker
from tests.support.api import Api
from tests.support.faults import FaultProxy
from tests.support.private_redis import PrivateRedis


@pytest.fixture
def private_redis(real_stack: None) -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    client = make_client(server.url)
    use_redis(client)
    yield server
    use_redis(None)
    client.close()
    server.close()


@pytest.fixture
def processes() -> Iterator[Callable[[str], None]]:
    """`become(name)`: run what follows as server process `name` (its own view of the epoch)."""
    trackers: dict[str, EpochTracker] = {}

    def become(name: str) -> None:
        invalidations.use_tracker(trackers.setdefault(name, EpochTracker()))

    yield become
    invalidations.use_tracker(None)


def _cached_body(server: PrivateRedis, api: Api, record_id: str) -> str | None:
    value = server.admin().get(f"rec:{api.workspace_id}:contacts:{record_id}")
    return None if value is None else str(value)


def _created_and_cached(api: Api, become: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    created = api.post("/v1/contacts", {"first_name": "Ada", "job_title": "Engineer"})
    assert created.status == 201
    path = f"/v1/contacts/{created.json['id']}"
    for name in ("reader", "idle"):  # each process fills/hits the cache
        become(name)
        assert api.get(path).json["job_title"] == "Engineer"
    return path, created.json


def _state(api: Api, server: PrivateRedis, record_id: str) -> str:
    """What a stale read would need explaining by: the committed row, the ledger's epoch, the entry."""
    from sqlalchemy import text

    from layers.db.engine import get_engine

    with get_engine().connect() as connection:
        title = connection.execute(text("SELECT job_title FROM contacts WHERE id = :id"), {"id": record_id}).scalar()
        ledger = connection.execute(text("SELECT MAX(id) FROM cache_invalidations")).scalar()
    return f"committed job_title={title!r}, ledger epoch={ledger}, entry={_cached_body(server, api, record_id)!r}"


def _reads_after(api: Api, path: str, become: Callable[[str], None]) -> list[str]:
    titles = []
    for name in ("reader", "idle", "writer"):  # the others first: the writer's own read would refill the entry
        become(name)
        reply = api.get(path)
        assert reply.status == 200
        titles.append(reply.json["job_title"])
    return titles


def test_a_write_while_redis_is_paused_is_never_hidden_by_its_old_entry(
    api: Api, private_redis: PrivateRedis, processes: Callable[[str], None]
) -> None:
    # GIVEN a contact cached by two processes
    path, created = _created_and_cached(api, processes)
    # WHEN Redis is paused (its entries intact), a third process changes the contact, and Redis resumes
    private_redis.pause()
    try:
        processes("writer")
        patched = api.patch(path, {"job_title": "Analyst"})
    finally:
        private_redis.resume()
    assert patched.status == 200 and patched.json["job_title"] == "Analyst"
    # The client's breaker skips Redis for a second after a failure; what matters is what a process does
    # once it talks to Redis again, so start that now (a fresh client: breaker closed).
    use_redis(make_client(private_redis.url))
    # THEN Redis still holds the entry cached before the write ...
    assert '"Engineer"' in (_cached_body(private_redis, api, created["id"]) or "")
    # ... and yet every process, the one that read before, the idle one and the writer, reads the change
    before = _state(api, private_redis, created["id"])
    assert _reads_after(api, path, processes) == ["Analyst"] * 3, before


def test_a_write_while_redis_is_partitioned_away_is_never_hidden_by_its_old_entry(
    api: Api, real_stack: None, processes: Callable[[str], None]
) -> None:
    # GIVEN a private Redis behind a link that can be cut, and a contact cached by two processes
    server = PrivateRedis()
    proxy = FaultProxy("127.0.0.1", server.port)
    url = f"redis://127.0.0.1:{proxy.port}/0"
    use_redis(make_client(url))
    try:
        path, created = _created_and_cached(api, processes)
        # WHEN the link is cut, a third process changes the contact, and the link comes back
        proxy.cut()
        processes("writer")
        patched = api.patch(path, {"job_title": "Analyst"})
        proxy.resume()
        use_redis(make_client(url))
        # THEN the old entry survived in Redis, and no process serves it
        assert patched.status == 200
        assert '"Engineer"' in (_cached_body(server, api, created["id"]) or "")
        assert _reads_after(api, path, processes) == ["Analyst"] * 3
    finally:
        use_redis(None)
        proxy.close()
        server.close()


def test_a_write_while_redis_is_too_slow_is_never_hidden_by_its_old_entry(
    api: Api, private_redis: PrivateRedis, processes: Callable[[str], None]
) -> None:
    # GIVEN a contact cached by two processes
    path, _ = _created_and_cached(api, processes)
    # WHEN Redis stalls for longer than the client waits (a blocking DEBUG SLEEP) while a third process
    # changes the contact — its pending marker arrives late or never counts
    stall = threading.Thread(target=lambda: private_redis.admin().execute_command("DEBUG", "SLEEP", "2"))
    stall.start()
    try:
        _wait_until_stalled(private_redis)
        processes("writer")
        patched = api.patch(path, {"job_title": "Analyst"})
    finally:
        stall.join()
    use_redis(make_client(private_redis.url))
    # THEN every process reads the change
    assert patched.status == 200
    assert _reads_after(api, path, processes) == ["Analyst"] * 3


def _wait_until_stalled(server: PrivateRedis) -> None:
    """DEBUG SLEEP has begun when a PING no longer answers within a short timeout."""
    probe = redis.Redis(port=server.port, socket_timeout=0.2, retry=None)
    for _ in range(200):
        try:
            probe.ping()
        except redis.TimeoutError:
            return
    pytest.fail("Redis never stalled")


def test_after_redis_is_killed_and_restarted_empty_reads_come_from_the_database(
    api: Api, private_redis: PrivateRedis, processes: Callable[[str], None]
) -> None:
    # GIVEN a contact cached by two processes
    path, _ = _created_and_cached(api, processes)
    # WHEN Redis is killed, the contact changes, and Redis restarts (empty: it keeps nothing on disk)
    private_redis.kill()
    processes("writer")
    patched = api.patch(path, {"job_title": "Analyst"})
    private_redis.start()
    use_redis(make_client(private_redis.url))
    # THEN every process reads the change, and the cache fills again
    assert patched.status == 200
    assert _reads_after(api, path, processes) == ["Analyst"] * 3


def test_a_key_revoked_while_redis_is_paused_stays_revoked_in_every_process(
    api: Api, private_redis: PrivateRedis, processes: Callable[[str], None]
) -> None:
    # GIVEN a second API key whose lookup is cached, used by two processes
    created = api.post("/v1/api-keys", {"name": "ci", "scopes": ["read"]}).json
    second = api.with_key(created["key"])
    for name in ("reader", "idle"):
        processes(name)
        assert second.get("/v1/contacts").status == 200
    # WHEN it is revoked while Redis is paused, and Redis resumes with the cached lookup
    private_redis.pause()
    try:
        processes("writer")
        assert api.delete(f"/v1/api-keys/{created['id']}").status == 204
    finally:
        private_redis.resume()
    use_redis(make_client(private_redis.url))
    # THEN no process accepts the key
    for name in ("reader", "idle", "writer"):
        processes(name)
        assert second.get("/v1/contacts").status == 401
