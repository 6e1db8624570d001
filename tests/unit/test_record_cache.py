"""Cache-aside for single records: versions only move forward, pending writes make readers miss, and a
write that could not reach Redis moves the epoch so no entry cached before it is served again."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import fakeredis
import pytest
from prometheus_client import REGISTRY

from layers.cache import invalidations
from layers.cache import records as record_cache
from layers.cache.client import make_client, use_redis
from layers.cache.invalidations import EpochTracker
from layers.cache.records import CachedRecord
from layers.db.uow import UnitOfWork

WS, TYPE, ID = "ws-1", "contacts", "01HRECORD"


def _record(version: int, *, archived: bool = False) -> CachedRecord:
    return CachedRecord(version=version, archived=archived, body=f'{{"id":"{ID}","version":{version},"x":"a|b"}}')


class Ledger:
    """The epoch ledger as the processes see it: a number the test moves."""

    def __init__(self) -> None:
        self.epoch = 0
        self.reads = 0

    def read(self) -> int:
        self.reads += 1
        return self.epoch


class Clock:
    """Monotonic time that moves only when the test (or a writer's acknowledgement delay) says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def process(ledger: Ledger, clock: Clock) -> EpochTracker:
    """One server process's view of the epoch (several share one ledger and one clock)."""
    return EpochTracker(clock=clock, sleep=clock.sleep, read_ledger=ledger.read)


@pytest.fixture(autouse=True)
def this_process(ledger: Ledger, clock: Clock) -> Iterator[EpochTracker]:
    tracker = process(ledger, clock)
    invalidations.use_tracker(tracker)
    yield tracker
    invalidations.use_tracker(None)


def put(workspace_id: str, object_type: str, record_id: str, record: CachedRecord) -> None:
    """A reader's fill, tagged with the epoch it knows now."""
    record_cache.fill(workspace_id, object_type, record_id, record, epoch=record_cache.epoch())


def mark_pending(workspace_id: str, object_type: str, record_id: str, version: int) -> None:
    with UnitOfWork(unscoped=True) as uow:
        record_cache.mark_pending(uow, workspace_id, object_type, record_id, version)


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
    put(WS, TYPE, ID, _record(3))

    # WHEN it is read back
    cached = record_cache.get(WS, TYPE, ID)

    # THEN version, archived flag and body come back exactly
    assert cached == _record(3)


def test_get_of_an_unknown_record_misses(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN an empty cache WHEN a record is read THEN it is a miss
    assert record_cache.get(WS, TYPE, ID) is None


def test_entries_are_per_workspace_and_object_type(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a record cached for one workspace and object type
    put(WS, TYPE, ID, _record(1))

    # WHEN the same id is read for another workspace or object type
    # THEN both miss
    assert record_cache.get("ws-2", TYPE, ID) is None
    assert record_cache.get(WS, "companies", ID) is None


def test_archived_flag_round_trips(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN an archived record in the cache
    put(WS, TYPE, ID, _record(4, archived=True))

    # WHEN read back THEN it is still marked archived
    cached = record_cache.get(WS, TYPE, ID)
    assert cached is not None and cached.archived is True


def test_an_older_fill_never_replaces_a_newer_version(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN version 5 in the cache
    put(WS, TYPE, ID, _record(5))

    # WHEN a slow reader tries to fill version 4
    put(WS, TYPE, ID, _record(4))

    # THEN version 5 is kept
    assert record_cache.get(WS, TYPE, ID) == _record(5)


def test_a_newer_version_replaces_an_older_one(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN version 1 in the cache WHEN version 2 is put THEN version 2 is read
    put(WS, TYPE, ID, _record(1))
    put(WS, TYPE, ID, _record(2, archived=True))
    assert record_cache.get(WS, TYPE, ID) == _record(2, archived=True)


def test_pending_write_makes_readers_miss_and_refuses_old_fills(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN version 1 cached, and a writer about to commit version 2
    put(WS, TYPE, ID, _record(1))
    mark_pending(WS, TYPE, ID, 2)

    # WHEN a reader looks, and a slow reader then tries to fill the version 1 it read from the database
    during_write = record_cache.get(WS, TYPE, ID)
    put(WS, TYPE, ID, _record(1))
    after_stale_fill = record_cache.get(WS, TYPE, ID)

    # THEN both reads miss (nothing stale is served) ...
    assert during_write is None
    assert after_stale_fill is None

    # ... AND the writer's own put of version 2 after commit is accepted
    put(WS, TYPE, ID, _record(2))
    assert record_cache.get(WS, TYPE, ID) == _record(2)


def test_pending_marker_expires_quickly(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a pending marker (a writer that may die before it stores the new value)
    mark_pending(WS, TYPE, ID, 7)

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
    mark_pending(WS, TYPE, ID, 1)
    record_cache.get(WS, TYPE, ID)
    put(WS, TYPE, ID, _record(1))
    record_cache.get(WS, TYPE, ID)

    # THEN each is counted under its own label
    assert {r: count(r) - before[r] for r in before} == {"miss": 1, "pending": 1, "hit": 1}


def test_redis_down_get_misses_and_put_is_a_no_op(redis_down: None) -> None:
    # GIVEN Redis refusing connections
    degraded_before = REGISTRY.get_sample_value("crm_redis_degraded_total", {"component": "cache"}) or 0.0

    # WHEN the cache is written and read (and a write marks pending)
    put(WS, TYPE, ID, _record(1))
    mark_pending(WS, TYPE, ID, 2)
    cached = record_cache.get(WS, TYPE, ID)

    # THEN nothing raises, the read is a miss, and each operation was served degraded
    assert cached is None
    degraded_after = REGISTRY.get_sample_value("crm_redis_degraded_total", {"component": "cache"}) or 0.0
    assert degraded_after - degraded_before == 3


def test_an_entry_of_another_epoch_is_a_miss(redis_client: fakeredis.FakeRedis, ledger: Ledger,
                                            clock: Clock) -> None:
    # GIVEN an entry cached in epoch 0
    put(WS, TYPE, ID, _record(1))
    assert record_cache.get(WS, TYPE, ID) == _record(1)
    # WHEN the epoch moves (a write elsewhere could not invalidate) and this process's copy is no longer fresh
    ledger.epoch = 1
    clock.now += invalidations.FRESH_SECONDS * 2
    # THEN the entry is a miss, and a fill of the new epoch is served again
    assert record_cache.get(WS, TYPE, ID) is None
    put(WS, TYPE, ID, _record(1))
    assert record_cache.get(WS, TYPE, ID) == _record(1)


def test_a_fresh_epoch_is_not_read_again(redis_client: fakeredis.FakeRedis, ledger: Ledger, clock: Clock) -> None:
    # GIVEN a process that just read the ledger
    record_cache.get(WS, TYPE, ID)
    reads = ledger.reads
    # WHEN it serves more reads within FRESH_SECONDS THEN it does not ask the ledger again
    clock.now += invalidations.FRESH_SECONDS / 2
    record_cache.get(WS, TYPE, ID)
    assert ledger.reads == reads
    # ... and past it, it does
    clock.now += invalidations.FRESH_SECONDS
    record_cache.get(WS, TYPE, ID)
    assert ledger.reads == reads + 1


def test_a_fill_from_an_older_epoch_never_replaces_a_newer_one(redis_client: fakeredis.FakeRedis, ledger: Ledger,
                                                                clock: Clock) -> None:
    # GIVEN an entry written in epoch 2
    ledger.epoch = 2
    put(WS, TYPE, ID, _record(3))
    # WHEN a slow filler that still knows epoch 1 stores (even a newer-looking version)
    record_cache.fill(WS, TYPE, ID, _record(4), epoch=1)
    # THEN the epoch-2 entry stands
    assert record_cache.get(WS, TYPE, ID) == _record(3)


def test_a_pending_marker_guards_its_write_across_an_epoch_change(redis_client: fakeredis.FakeRedis,
                                                                   ledger: Ledger, clock: Clock) -> None:
    # GIVEN a writer's pending marker for version 2 (epoch 0), then the epoch moves for another write
    put(WS, TYPE, ID, _record(1))
    mark_pending(WS, TYPE, ID, 2)
    ledger.epoch = 1
    clock.now += invalidations.FRESH_SECONDS * 2
    # WHEN a reader of the new epoch fills the version 1 it read before the writer committed
    put(WS, TYPE, ID, _record(1))
    # THEN the fill is refused (versions only move forward, whatever the epoch): nothing stale is served
    assert record_cache.get(WS, TYPE, ID) is None


def test_a_write_that_cannot_reach_redis_moves_the_epoch_in_its_transaction(redis_down: None) -> None:
    # GIVEN Redis refusing connections
    before = _ledger_size()
    # WHEN a write marks its record pending and commits
    with UnitOfWork(unscoped=True) as uow:
        record_cache.mark_pending(uow, WS, TYPE, ID, 2)
        record_cache.mark_pending(uow, WS, TYPE, "other", 1)  # one row per transaction is enough
        assert _ledger_size() == before  # not before COMMIT
        uow.commit()
    # THEN the ledger got one row, with that transaction
    assert _ledger_size() == before + 1
    # AND a write that rolls back leaves no row
    with UnitOfWork(unscoped=True) as uow:
        record_cache.mark_pending(uow, WS, TYPE, ID, 3)
    assert _ledger_size() == before + 1


def _ledger_size() -> int:
    from sqlalchemy import func, select

    from layers.db.engine import get_engine

    with get_engine().connect() as connection:
        return int(connection.execute(select(func.count()).select_from(invalidations.CacheInvalidation)).scalar() or 0)


def test_every_process_misses_an_entry_once_a_write_that_moved_the_epoch_has_answered(
    redis_client: fakeredis.FakeRedis, ledger: Ledger, clock: Clock
) -> None:
    # GIVEN two processes that both serve a cached entry (B read the ledger as late as possible)
    writer = invalidations.tracker()
    reader = process(ledger, clock)
    put(WS, TYPE, ID, _record(1))
    invalidations.use_tracker(reader)
    assert record_cache.get(WS, TYPE, ID) == _record(1)
    # WHEN the writer commits a write that moved the epoch (its ledger row is 1) and acknowledges it
    ledger.epoch = 1
    invalidations.use_tracker(writer)
    writer.moved(1)  # holds the answer back ACK_DELAY_SECONDS (the fake clock moves)
    # THEN a GET that starts after the answer misses in the other process too
    invalidations.use_tracker(reader)
    assert record_cache.get(WS, TYPE, ID) is None


def test_a_marker_refused_for_a_newer_epoch_moves_the_epoch_instead(redis_client: fakeredis.FakeRedis,
                                                                     ledger: Ledger, clock: Clock) -> None:
    # GIVEN an entry another process stored in epoch 2, while this process still knows epoch 1 (fresh enough)
    ledger.epoch = 1
    assert record_cache.epoch() == 1
    record_cache.fill(WS, TYPE, ID, _record(1), epoch=2)
    before = _ledger_size()
    # WHEN this process writes version 2: Redis refuses its marker (an older epoch than the entry's)
    with UnitOfWork(unscoped=True) as uow:
        record_cache.mark_pending(uow, WS, TYPE, ID, 2)
        uow.commit()
    # THEN the write is not left unguarded: the epoch moved with it
    assert _ledger_size() == before + 1
