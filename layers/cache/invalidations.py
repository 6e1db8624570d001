"""The cache epoch: a ledger in the database, so a write that could not reach Redis retires what every
process cached before it — before the write is acknowledged.

Redis can fail in ways that keep its old entries: paused (SIGSTOP), partitioned, slowed past the client's
timeout, failed over. A write that cannot mark its cached copies there must still never be hidden by them.

1. A write whose invalidation fails (an error, a timeout, the breaker open) inserts a row into
   `cache_invalidations` in its own transaction (`record(uow)`), or in a transaction of its own when it
   learns of the failure after COMMIT (`record_now()`). The epoch is the highest id in the ledger.
2. Every cache entry carries the epoch its writer knew *before* it read the database. A reader serves an
   entry only when it carries exactly the reader's epoch; fills never replace an entry of a newer epoch.
3. A process serves from the cache only while its copy of the epoch is fresh: read from the ledger no more
   than FRESH_SECONDS before (measured from when the read was sent). Otherwise the reader reads the ledger
   first — one indexed MAX() over a tiny table, at most 1/FRESH_SECONDS times a second per process, and
   never by a process that serves no cached reads. If the ledger cannot be read, the cache is not used.
4. A write that moved the epoch waits ACK_DELAY_SECONDS (> FRESH_SECONDS) after COMMIT before it answers.
   A GET that starts after the answer runs in a process whose epoch was read either after that COMMIT (it
   sees the new epoch) or more than FRESH_SECONDS ago (it reads the ledger again before serving). Either
   way no entry cached before the write is served once the write has been acknowledged: the bound on
   stale reads is zero, paid for by ACK_DELAY_SECONDS of latency on writes made while Redis is failing.

Failure cases: Redis restarted empty — nothing to serve. A failover to a replica that missed a pending
marker written just before it — the same as a failed marker only if the write saw the failure; ElastiCache
replicates synchronously enough that this is not covered here (see the README). The database down — reads
fail on their own terms; nothing is served from a cache whose epoch cannot be checked.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import BigInteger, Integer, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, UTCDateTime
from layers.db.engine import get_engine
from layers.db.uow import UnitOfWork
from layers.observability.metrics import CACHE_INVALIDATIONS_LOST
from shared.clock import utcnow

log = logging.getLogger(__name__)

FRESH_SECONDS = 0.1
ACK_DELAY_SECONDS = 0.15
_RECORDED = "cache_invalidation_recorded"  # session.info flag: one ledger row per transaction is enough


class CacheInvalidation(Base):
    """Platform table: one row per write whose cache invalidation could not be confirmed."""

    __tablename__ = "cache_invalidations"

    # SQLite autoincrements only an INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


def _read_ledger() -> int:
    with get_engine().connect() as connection:
        return int(connection.execute(select(func.max(CacheInvalidation.id))).scalar() or 0)


class EpochTracker:
    """One process's view of the epoch (steps 3 and 4). Clock, sleep and ledger read are injectable so a
    test can play several processes and any interleaving without waiting on the wall clock."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        read_ledger: Callable[[], int] = _read_ledger,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._read_ledger = read_ledger
        self._lock = threading.Lock()
        self._epoch = 0
        self._read_at: float | None = None  # when the last ledger read was sent

    def current(self) -> int | None:
        """The epoch, at most FRESH_SECONDS old; None when the ledger cannot be read (then use no cache)."""
        read_at = self._read_at
        if read_at is not None and self._clock() - read_at <= FRESH_SECONDS:
            return self._epoch
        with self._lock:  # one reader refreshes; the others wait for it rather than all querying
            read_at = self._read_at
            if read_at is not None and self._clock() - read_at <= FRESH_SECONDS:
                return self._epoch
            sent = self._clock()
            try:
                epoch = self._read_ledger()
            except SQLAlchemyError:
                log.warning("cache epoch unreadable; the cache is bypassed")
                return None
            self._epoch = max(self._epoch, epoch)
            self._read_at = sent
            return self._epoch

    def moved(self, epoch: int) -> None:
        """This process wrote ledger row `epoch` (committed): use it at once, then hold the answer back
        until every other process must have read it (step 4)."""
        with self._lock:
            self._epoch = max(self._epoch, epoch)
        self._sleep(ACK_DELAY_SECONDS)


_tracker = EpochTracker()


def tracker() -> EpochTracker:
    return _tracker


def use_tracker(replacement: EpochTracker | None) -> None:
    """Swap this process's tracker (tests play several processes); None puts a fresh default back."""
    global _tracker
    _tracker = replacement if replacement is not None else EpochTracker()


def current() -> int | None:
    return _tracker.current()


def record(uow: UnitOfWork) -> None:
    """Step 1, inside the write's transaction (a before-commit callback): the epoch moves with the write."""
    session = uow.session
    if session.info.get(_RECORDED):
        return
    session.info[_RECORDED] = True
    CACHE_INVALIDATIONS_LOST.inc()
    result = session.execute(insert(CacheInvalidation).values(created_at=utcnow()))
    epoch = int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
    owner = _tracker
    uow.after_commit(lambda: owner.moved(epoch))


def record_now() -> None:
    """Step 1 for a failure learnt after COMMIT (a second invalidation that could not be sent)."""
    CACHE_INVALIDATIONS_LOST.inc()
    try:
        with get_engine().begin() as connection:
            result = connection.execute(insert(CacheInvalidation).values(created_at=utcnow()))
            epoch = int(result.inserted_primary_key[0])  # type: ignore[index]
    except SQLAlchemyError:
        log.exception("could not record a lost cache invalidation")
        return
    _tracker.moved(epoch)


def purge(*, before: datetime) -> int:
    """Delete ledger rows older than `before`, always keeping the newest (it *is* the epoch)."""
    with get_engine().begin() as connection:
        newest = connection.execute(select(func.max(CacheInvalidation.id))).scalar()
        if newest is None:
            return 0
        result = connection.execute(delete(CacheInvalidation).where(
            CacheInvalidation.id < newest, CacheInvalidation.created_at < before))
        return int(result.rowcount or 0)
