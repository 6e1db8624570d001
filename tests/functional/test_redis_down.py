"""With Redis unreachable the API keeps serving from the database, and once Redis is back no read is
stale: a write made during the outage must not be hidden by a cache entry written before it."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import fakeredis
import pytest

from layers.cache.client import BREAKER_SECONDS
from tests.support.api import Api

Toggle = Callable[[], None]


@pytest.fixture
def outage(fake_redis: fakeredis.FakeRedis) -> Iterator[tuple[Toggle, Toggle]]:
    """(start, end): the same Redis refuses connections, then accepts them again with its contents
    intact — as a network partition leaves them. `end` also waits out the client's breaker, so the
    next reads really consult Redis again."""
    server = fake_redis.connection_pool.connection_kwargs["server"]

    def start() -> None:
        server.connected = False

    def end() -> None:
        server.connected = True
        time.sleep(BREAKER_SECONDS + 0.05)
        assert fake_redis.ping()

    yield start, end
    server.connected = True


def test_reads_fall_through_to_the_database(api: Api, outage: tuple[Toggle, Toggle]) -> None:
    # GIVEN a contact, then Redis goes away
    start, _ = outage
    created = api.post("/v1/contacts", {"first_name": "Ada"})
    start()
    # WHEN it is read and listed
    got = api.get(f"/v1/contacts/{created.json['id']}")
    listed = api.get("/v1/contacts")
    # THEN both answer from the database
    assert got.status == 200 and got.json == created.json
    assert got.header("ETag") == created.header("ETag")
    assert [c["id"] for c in listed.json["data"]] == [created.json["id"]]


def test_writes_work_during_an_outage(api: Api, outage: tuple[Toggle, Toggle]) -> None:
    # GIVEN Redis is down
    start, _ = outage
    start()
    # WHEN a contact is created, updated and archived
    created = api.post("/v1/contacts", {"first_name": "Ada"})
    path = f"/v1/contacts/{created.json['id']}"
    patched = api.patch(path, {"job_title": "Analyst"})
    archived = api.delete(path)
    # THEN every write succeeds and the reads agree
    assert created.status == 201 and patched.status == 200 and archived.status == 204
    assert api.get(path).status == 404
    assert api.get(f"{path}?include_archived=true").json["job_title"] == "Analyst"


def test_a_write_during_an_outage_is_not_hidden_by_the_cache_afterwards(
    api: Api, outage: tuple[Toggle, Toggle]
) -> None:
    # GIVEN a contact whose read is cached in Redis
    start, end = outage
    created = api.post("/v1/contacts", {"first_name": "Ada", "job_title": "Engineer"})
    path = f"/v1/contacts/{created.json['id']}"
    assert api.get(path).json["job_title"] == "Engineer"
    # WHEN Redis becomes unreachable, the contact is changed, and Redis comes back with its old entry
    start()
    patched = api.patch(path, {"job_title": "Analyst"})
    end()
    after = api.get(path)
    # THEN the read after the outage shows the change, not the entry cached before it
    assert patched.status == 200
    assert after.status == 200
    assert after.json["job_title"] == "Analyst"
    assert after.header("ETag") == patched.header("ETag")


def test_an_archive_during_an_outage_is_not_undone_by_the_cache_afterwards(
    api: Api, outage: tuple[Toggle, Toggle]
) -> None:
    # GIVEN a cached contact
    start, end = outage
    created = api.post("/v1/contacts", {"first_name": "Ada"})
    path = f"/v1/contacts/{created.json['id']}"
    assert api.get(path).status == 200
    # WHEN it is archived while Redis is unreachable, and Redis comes back
    start()
    assert api.delete(path).status == 204
    end()
    # THEN it stays archived for readers
    assert api.get(path).status == 404


def test_ready_reports_redis_down_while_health_stays_up(api: Api, outage: tuple[Toggle, Toggle]) -> None:
    # GIVEN Redis is unreachable
    start, end = outage
    start()
    # WHEN the probes are asked
    ready = api.get("/ready", auth=False)
    health = api.get("/health", auth=False)
    # THEN readiness fails naming Redis (the database is fine) and liveness is unaffected
    assert ready.status == 503
    assert ready.json["checks"] == {"database": True, "redis": False}
    assert health.status == 200
    # ... and readiness recovers with Redis
    end()
    assert api.get("/ready", auth=False).status == 200


def test_a_key_revoked_during_an_outage_stays_revoked_afterwards(
    api: Api, outage: tuple[Toggle, Toggle], fake_redis: fakeredis.FakeRedis
) -> None:
    # GIVEN a second key whose lookup is cached in Redis
    created = api.post("/v1/api-keys", {"name": "ci", "scopes": ["read"]}).json
    second = api.with_key(created["key"])
    assert second.get("/v1/contacts").status == 200
    # WHEN it is revoked while Redis is unreachable, and Redis comes back with the cached lookup
    start, end = outage
    start()
    assert api.delete(f"/v1/api-keys/{created['id']}").status == 204
    end()
    assert len(fake_redis.keys("apikey:*")) >= 1
    # THEN the revoked key is refused
    assert second.get("/v1/contacts").status == 401
