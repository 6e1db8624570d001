"""Cache-aside for single-record reads, safe against stale fills and against Redis failing.

Each entry is `version|archived|epoch|json`. Writers mark the key with the new version *before*
commit (a pending marker readers treat as a miss) and store the new value after commit. Every
fill goes through one Lua script that refuses to replace a newer version (of any epoch) or an entry
of a newer epoch, so a slow reader holding an old row can never overwrite what a writer stored. A writer that
cannot place its marker (Redis down, paused, slow) moves the cache epoch in its own transaction
(layers/cache/invalidations.py); entries of any other epoch are misses, so nothing cached before the
write is served once the write has answered.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from layers.cache import invalidations
from layers.cache.client import get_text, guarded
from layers.db.uow import UnitOfWork
from layers.observability.metrics import CACHE_LOOKUPS
from shared.settings import get_settings

_SET_IF_NOT_OLDER = """
local current = redis.call('GET', KEYS[1])
if current then
  local first = string.find(current, '|', 1, true)
  local second = string.find(current, '|', first + 1, true)
  local third = string.find(current, '|', second + 1, true)
  local current_version = tonumber(string.sub(current, 1, first - 1))
  local current_epoch = tonumber(string.sub(current, second + 1, third - 1))
  -- A filler that knows an older epoch knows less: refuse. Versions only move forward, whatever the
  -- epoch: a pending marker still guards its write after the epoch moved for another one.
  if current_epoch and current_epoch > tonumber(ARGV[5]) then return 0 end
  if current_version and current_version > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[5] .. '|' .. ARGV[3], 'EX', ARGV[4])
return 1
"""
PENDING_TTL_SECONDS = 30


@dataclass(frozen=True)
class CachedRecord:
    version: int
    archived: bool
    body: str  # the record's JSON, exactly as the API answers it


def _key(workspace_id: str, object_type: str, record_id: str) -> str:
    return f"rec:{workspace_id}:{object_type}:{record_id}"


_scripts: dict[int, object] = {}


def _store(client: redis.Redis, key: str, version: int, archived: bool, body: str, ttl: int, epoch: int) -> bool:
    """True when the entry was written; False when the script refused it (a newer version or epoch is there)."""
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SET_IF_NOT_OLDER)
    return bool(script(keys=[key], args=[version, int(archived), body, ttl, epoch]))  # type: ignore[operator]


def epoch() -> int | None:
    """The epoch to tag a fill with: take it *before* reading the record from the database."""
    return invalidations.current()


def get(workspace_id: str, object_type: str, record_id: str) -> CachedRecord | None:
    current = invalidations.current()
    if current is None:  # the epoch cannot be checked: the cache cannot be trusted
        CACHE_LOOKUPS.labels(result="bypassed").inc()
        return None
    key = _key(workspace_id, object_type, record_id)
    raw = get_text("cache", key)
    if not raw:
        CACHE_LOOKUPS.labels(result="miss").inc()
        return None
    version, archived, entry_epoch, body = str(raw).split("|", 3)
    if entry_epoch != str(current):
        CACHE_LOOKUPS.labels(result="stale_epoch").inc()
        return None
    if not body:  # pending marker: a write is in flight
        CACHE_LOOKUPS.labels(result="pending").inc()
        return None
    CACHE_LOOKUPS.labels(result="hit").inc()
    return CachedRecord(int(version), archived == "1", body)


def fill(workspace_id: str, object_type: str, record_id: str, record: CachedRecord, *, epoch: int | None) -> None:
    """Store what a reader read from the database, tagged with the epoch it took before reading."""
    if epoch is None:
        return
    ttl = get_settings().cache_ttl_seconds
    key = _key(workspace_id, object_type, record_id)
    guarded("cache", lambda r: _store(r, key, record.version, record.archived, record.body, ttl, epoch),
            lambda: None)


def put_written(workspace_id: str, object_type: str, record_id: str, record: CachedRecord) -> None:
    """After COMMIT, store the result of a write. Its pending marker is already in place (or the epoch
    moved), so a failure here costs only a miss: readers fill from the database."""
    fill(workspace_id, object_type, record_id, record, epoch=invalidations.current())


def mark_pending(uow: UnitOfWork, workspace_id: str, object_type: str, record_id: str, version: int) -> None:
    """Before COMMIT (a before-commit callback of `uow`): readers miss from now on, and fills older than
    `version` are refused. If Redis cannot confirm it, the cache epoch moves in the same transaction."""
    current = invalidations.current()
    if current is None:  # no epoch to tag it with; moving the epoch covers this write instead
        invalidations.record(uow)
        return
    key = _key(workspace_id, object_type, record_id)
    placed = guarded("cache", lambda r: _store(r, key, version, False, "", PENDING_TTL_SECONDS, current),
                     lambda: False)
    if not placed:
        # Redis failed, or it refused the marker because the entry there carries an epoch newer than this
        # process knows (another process moved it less than FRESH_SECONDS ago): either way the entry is not
        # guarded by a marker, so the epoch must move with this write.
        invalidations.record(uow)
