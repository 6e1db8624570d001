"""Cache-aside for single records: versions only move forward, pending writes make readers miss."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import fakeredis
import pytest
from prometheus_client import REGISTRY

from layers.cache import records as record_cache
from layers.cache.client import make_client, use_redis
from layers.cache.records import CachedRecord

WS, TYPE, ID = "ws-1", "contacts", "01HRECORD"


def _record(version: int, *, archived: bool = False) -> CachedRecord:
    return CachedRecord(version=version, archived=archived, body=f'{{"id":"{ID}","version":{version},"x":"a|b"}}')


@pytest.fixture
def redis_client() -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    use_redis(client)
    yield client
    use_redis(None)


@pytest.fixture
def redis_down() -> Iterator[None]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"redis://127.0.0.1:{port}/0")
    use_redis(client)
    yield
    use_redis(None)
    client.close()


def test_put_then_get_round_trips(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a record stored in the cache (its body contains the separator character)
    record_cache.put(WS, TYPE, ID, _record(3))

    # WHEN it is read back
    cached = record_cache.get(WS, TYPE, ID)

    # THEN version, archived flag and body come back exactly
    assert cached == _record(3)


def test_get_of_an_unknown_record_misses(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN an empty cache WHEN a record is read THEN it is a miss
    assert record_cache.get(WS, TYPE, ID) is None


def test_entries_are_per_workspace_and_object_type(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a record cached for one workspace and object type
    record_cache.put(WS, TYPE, ID, _record(1))

    # WHEN the same id is read for another workspace or object type
    # THEN both miss
    assert record_cache.get("ws-2", TYPE, ID) is None
    assert record_cache.get(WS, "companies", ID) is None


def test_archived_flag_round_trips(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN an archived record in the cache
    record_cache.put(WS, TYPE, ID, _record(4, archived=True))

    # WHEN read back THEN it is still marked archived
    cached = record_cache.get(WS, TYPE, ID)
    assert cached is not None and cached.archived is True


def test_an_older_fill_never_replaces_a_newer_version(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN version 5 in the cache
    record_cache.put(WS, TYPE, ID, _record(5))

    # WHEN a slow reader tries to fill version 4
    record_cache.put(WS, TYPE, ID, _record(4))

    # THEN version 5 is kept
    assert record_cache.get(WS, TYPE, ID) == _record(5)


def test_a_newer_version_replaces_an_older_one(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN version 1 in the cache WHEN version 2 is put THEN version 2 is read
    record_cache.put(WS, TYPE, ID, _record(1))
    record_cache.put(WS, TYPE, ID, _record(2, archived=True))
    assert record_cache.get(WS, TYPE, ID) == _record(2, archived=True)


def test_pending_write_makes_readers_miss_and_refuses_old_fills(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN version 1 cached, and a writer about to commit version 2
    record_cache.put(WS, TYPE, ID, _record(1))
    record_cache.mark_pending(WS, TYPE, ID, 2)

    # WHEN a reader looks, and a slow reader then tries to fill the version 1 it read from the database
    during_write = record_cache.get(WS, TYPE, ID)
    record_cache.put(WS, TYPE, ID, _record(1))
    after_stale_fill = record_cache.get(WS, TYPE, ID)

    # THEN both reads miss (nothing stale is served) ...
    assert during_write is None
    assert after_stale_fill is None

    # ... AND the writer's own put of version 2 after commit is accepted
    record_cache.put(WS, TYPE, ID, _record(2))
    assert record_cache.get(WS, TYPE, ID) == _record(2)


def test_pending_marker_expires_quickly(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a pending marker (a writer that may die before it stores the new value)
    record_cache.mark_pending(WS, TYPE, ID, 7)

    # WHEN its expiry is inspected THEN it is short, so a dead writer does not block the cache for long
    ttls = [redis_client.ttl(key) for key in redis_client.keys("*")]
    assert len(ttls) == 1
    assert 0 < ttls[0] <= record_cache.PENDING_TTL_SECONDS


def test_lookups_are_counted_by_result(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a miss, a pending read and a hit
    def count(result: str) -> float:
        return REGISTRY.get_sample_value("crm_cache_lookups_total", {"result": result}) or 0.0

    before = {r: count(r) for r in ("miss", "pending", "hit")}

    # WHEN they happen
    record_cache.get(WS, TYPE, ID)
    record_cache.mark_pending(WS, TYPE, ID, 1)
    record_cache.get(WS, TYPE, ID)
    record_cache.put(WS, TYPE, ID, _record(1))
    record_cache.get(WS, TYPE, ID)

    # THEN each is counted under its own label
    assert {r: count(r) - before[r] for r in before} == {"miss": 1, "pending": 1, "hit": 1}


def test_redis_down_get_misses_and_put_is_a_no_op(redis_down: None) -> None:
    # GIVEN Redis refusing connections
    degraded_before = REGISTRY.get_sample_value("crm_redis_degraded_total", {"component": "cache"}) or 0.0

    # WHEN the cache is written and read (and a write marks pending)
    record_cache.put(WS, TYPE, ID, _record(1))
    record_cache.mark_pending(WS, TYPE, ID, 2)
    cached = record_cache.get(WS, TYPE, ID)

    # THEN nothing raises, the read is a miss, and each operation was served degraded
    assert cached is None
    degraded_after = REGISTRY.get_sample_value("crm_redis_degraded_total", {"component": "cache"}) or 0.0
    assert degraded_after - degraded_before == 3


def test_a_lost_invalidation_retires_every_older_entry_for_every_process(
    redis_client: fakeredis.FakeRedis,
) -> None:
    # GIVEN an entry cached by any process, and a write in this process that could not invalidate it
    record_cache.put("ws", "contacts", "c1", _record(1))
    epoch_before = redis_client.get("cache:epoch")
    server = redis_client.connection_pool.connection_kwargs["server"]
    server.connected = False
    record_cache.mark_pending("ws", "contacts", "c1", 2)  # fails: Redis is away
    server.connected = True
    use_redis(redis_client)  # close the breaker (as the next second would); the lost write stays noted
    from layers.cache import client

    client.invalidation_lost()
    # WHEN Redis answers again
    record_cache.get("ws", "contacts", "other")
    # THEN the epoch has moved on in Redis itself, so the old entry is a miss for every reader
    assert redis_client.get("cache:epoch") != epoch_before
    assert record_cache.get("ws", "contacts", "c1") is None
    # AND new fills are served again
    record_cache.put("ws", "contacts", "c1", _record(2))
    assert record_cache.get("ws", "contacts", "c1") == _record(2)
