"""Cache-aside for single-record reads, safe against stale fills.

Each entry is `version|archived|epoch|json`. Writers mark the key with the new version *before*
commit (a pending marker readers treat as a miss) and store the new value after commit. Every
fill goes through one Lua script that refuses to replace a newer version, so a slow reader holding
an old row can never overwrite what a writer stored. An entry from another cache epoch is a miss:
the epoch moves on when a write could not invalidate while Redis was away (`client.invalidation_lost`),
so no process serves what was cached before that write.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from layers.cache.client import CACHE_EPOCH_KEY, guarded, invalidation_lost
from layers.observability.metrics import CACHE_LOOKUPS
from shared.settings import get_settings

_SET_IF_NOT_OLDER = """
local epoch = redis.call('GET', KEYS[2]) or '0'
local current = redis.call('GET', KEYS[1])
if current then
  local first = string.find(current, '|', 1, true)
  local second = string.find(current, '|', first + 1, true)
  local third = string.find(current, '|', second + 1, true)
  local current_version = tonumber(string.sub(current, 1, first - 1))
  local current_epoch = string.sub(current, second + 1, third - 1)
  if current_epoch == epoch and current_version and current_version > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. epoch .. '|' .. ARGV[3], 'EX', ARGV[4])
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


def _store(client: redis.Redis, key: str, version: int, archived: bool, body: str, ttl: int) -> None:
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SET_IF_NOT_OLDER)
    script(keys=[key, CACHE_EPOCH_KEY], args=[version, int(archived), body, ttl])  # type: ignore[operator]


def get(workspace_id: str, object_type: str, record_id: str) -> CachedRecord | None:
    key = _key(workspace_id, object_type, record_id)
    pair: list[str | None] = guarded(
        "cache", lambda r: r.mget(CACHE_EPOCH_KEY, key), lambda: [None, None])  # type: ignore[arg-type,return-value]
    epoch, raw = pair
    if not raw:
        CACHE_LOOKUPS.labels(result="miss").inc()
        return None
    version, archived, entry_epoch, body = str(raw).split("|", 3)
    if entry_epoch != (epoch or "0"):
        CACHE_LOOKUPS.labels(result="stale_epoch").inc()
        return None
    if not body:  # pending marker: a write is in flight
        CACHE_LOOKUPS.labels(result="pending").inc()
        return None
    CACHE_LOOKUPS.labels(result="hit").inc()
    return CachedRecord(int(version), archived == "1", body)


def put(workspace_id: str, object_type: str, record_id: str, record: CachedRecord, *, written: bool = False) -> None:
    """Store a record read (a fill) or, with `written`, the result of a committed write."""
    ttl = get_settings().cache_ttl_seconds
    key = _key(workspace_id, object_type, record_id)
    guarded("cache", lambda r: _store(r, key, record.version, record.archived, record.body, ttl),
            invalidation_lost if written else lambda: None)


def mark_pending(workspace_id: str, object_type: str, record_id: str, version: int) -> None:
    """Before commit: readers miss from now on, and fills older than `version` are refused."""
    key = _key(workspace_id, object_type, record_id)
    guarded("cache", lambda r: _store(r, key, version, False, "", PENDING_TTL_SECONDS), invalidation_lost)
