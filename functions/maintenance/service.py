"""Housekeeping across workspaces: purge long-archived records, expire what outlived its retention.

Every step works in bounded batches, each its own short transaction, so a sweep never holds locks for
long and a second sweep running at the same time only finds less to do.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import redis
from sqlalchemy import ColumnElement, delete, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from functions.activities import service as activities
from functions.companies import service as companies
from functions.contacts import service as contacts
from functions.deals import service as deals
from functions.workspaces import service as workspaces
from layers.cache import invalidations
from layers.cache.client import get_redis
from layers.db.base import Base
from layers.db.idempotency import IdempotencyRecord
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.queue.receipts import JobReceipt
from shared.context import system_scope
from shared.settings import get_settings

PURGE_AFTER = timedelta(days=90)  # archived longer than this: deleted for good (field history stays)
PURGE_BATCH = 500
MAX_PURGE_BATCHES = 400  # per run (200,000 records); tomorrow's run takes the rest
WORKSPACE_PAGE = 500
# Job receipts only need to outlive a message's redeliveries: SQS keeps a message 14 days at most.
RECEIPT_RETENTION = timedelta(days=15)
EXPIRY_BATCH = 500
MAX_EXPIRY_BATCHES = 200  # per table and run
SCAN_COUNT = 500
# The Redis keys that must always expire (layers/cache/idempotency.py, layers/cache/sessions.py).
EXPIRING_KEYS: tuple[tuple[str, Callable[[], int]], ...] = (
    ("idem:*", lambda: get_settings().idempotency_ttl_seconds),
    ("idem-seen:*", lambda: get_settings().idempotency_ttl_seconds),
    ("sess:*", lambda: get_settings().session_ttl_seconds),
)

Purge = Callable[..., int]
# Children before what they hang on: activities link to deals, contacts and companies; deals to contacts.
PURGES: tuple[tuple[str, Purge], ...] = (
    ("activities", activities.purge_archived),
    ("deals", deals.purge_archived),
    ("contacts", contacts.purge_archived),
    ("companies", companies.purge_archived),
)


def purge_archived(*, now: datetime, batch_size: int = PURGE_BATCH) -> dict[str, int]:
    """Hard-delete contacts, companies, deals and activities archived more than 90 days before `now`, per
    workspace, `batch_size` records a transaction. Returns how many of each went."""
    cutoff = now - PURGE_AFTER
    counts = {object_type: 0 for object_type, _ in PURGES}
    batches = 0
    after: str | None = None
    while batches < MAX_PURGE_BATCHES:
        page = workspaces.workspace_ids(after=after, limit=WORKSPACE_PAGE)
        for workspace_id in page:
            for object_type, purge in PURGES:
                purged = batch_size
                while purged == batch_size and batches < MAX_PURGE_BATCHES:
                    with UnitOfWork(system_scope(workspace_id, source="worker")) as uow:
                        purged = purge(uow, archived_before=cutoff, limit=batch_size)
                        uow.commit()
                    counts[object_type] += purged
                    batches += 1 if purged else 0
        if len(page) < WORKSPACE_PAGE:
            break
        after = page[-1]
    counts["batches"] = batches
    return counts


def expire_stale_entries(*, now: datetime, batch_size: int = EXPIRY_BATCH) -> dict[str, int]:
    """Delete published events past the event log's retention, job receipts past the queue's and expired
    Idempotency-Key records, then give expiring Redis keys that lost their TTL (an older version, a failed
    EXPIRE) the configured one."""
    events_before = now - timedelta(days=get_settings().event_retention_days)
    counts = {
        # Unpublished rows stay whatever their age: the relay still owes them to the queue.
        "outbox_events": _delete_in_batches(OutboxEvent, OutboxEvent.id, OutboxEvent.published_at < events_before,
                                            batch_size=batch_size),
        "job_receipts": _delete_in_batches(JobReceipt, JobReceipt.key, JobReceipt.received_at < now - RECEIPT_RETENTION,
                                           batch_size=batch_size),
        "idempotency_records": _delete_in_batches(
            IdempotencyRecord, (IdempotencyRecord.owner, IdempotencyRecord.key_digest),
            IdempotencyRecord.expires_at <= now, batch_size=batch_size),
    }
    # The cache epoch ledger: a day is far longer than any request or cache entry it could concern.
    counts["cache_invalidations"] = invalidations.purge(before=now - timedelta(days=1))
    client = get_redis()
    for pattern, ttl in EXPIRING_KEYS:
        counts["ttl_restored_" + pattern.split(":")[0]] = restore_ttls(client, pattern, ttl())
    return counts


def _delete_in_batches(model: type[Base], key: InstrumentedAttribute[str] | tuple[InstrumentedAttribute[str], ...],
                       condition: ColumnElement[bool], *, batch_size: int) -> int:
    """A platform table, across workspaces (an unscoped unit of work), `batch_size` rows a transaction.
    `key` is its primary key: a column, or the columns of a composite one."""
    columns = key if isinstance(key, tuple) else (key,)
    primary_key = tuple_(*columns) if len(columns) > 1 else columns[0]
    deleted = 0
    for _ in range(MAX_EXPIRY_BATCHES):
        with UnitOfWork(unscoped=True) as uow:
            keys = [tuple(row) if len(columns) > 1 else row[0]
                    for row in uow.session.execute(select(*columns).where(condition).limit(batch_size))]
            if keys:
                uow.session.execute(delete(model).where(primary_key.in_(keys), condition)
                                    .execution_options(synchronize_session=False))
                uow.commit()
        deleted += len(keys)
        if len(keys) < batch_size:
            break
    return deleted


# Atomic per key, so a TTL set between the check and the EXPIRE (a new claim's short one) is never replaced.
_EXPIRE_PERSISTENT = """
local fixed = 0
for _, key in ipairs(KEYS) do
  if redis.call('TTL', key) == -1 then
    redis.call('EXPIRE', key, ARGV[1])
    fixed = fixed + 1
  end
end
return fixed
"""


def restore_ttls(client: redis.Redis, pattern: str, ttl_seconds: int) -> int:
    """Give every key matching `pattern` that has no TTL this one; returns how many it fixed. SCAN walks the
    keyspace in small steps and each script call checks one step's keys, so Redis stays responsive."""
    script = client.register_script(_EXPIRE_PERSISTENT)
    fixed = 0
    batch: list[str] = []
    for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
        batch.append(key)
        if len(batch) >= SCAN_COUNT:
            fixed += int(script(keys=batch, args=[ttl_seconds]))  # type: ignore[arg-type]
            batch = []
    if batch:
        fixed += int(script(keys=batch, args=[ttl_seconds]))  # type: ignore[arg-type]
    return fixed
