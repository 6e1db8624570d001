"""The Redis client (or the in-process stand-in) and a breaker so a Redis outage costs no latency."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from layers.observability.metrics import REDIS_AVAILABLE, REDIS_DEGRADED
from shared.settings import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_client: redis.Redis | None = None
_open_until = 0.0  # breaker: skip Redis until this monotonic time after a failure
_lost_invalidations = False  # a write could not invalidate its cached copies while Redis was away
BREAKER_SECONDS = 1.0
# Every cached entry records the epoch it was written in; readers treat other epochs as misses.
# (Two-key scripts and MGETs assume a non-cluster Redis, as ElastiCache's replication group is.)
CACHE_EPOCH_KEY = "cache:epoch"


def make_client(url: str | None) -> redis.Redis:
    if url is None:
        import fakeredis  # the embedded default: an in-process Redis with Lua support

        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
        max_connections=256,
    )


def get_redis() -> redis.Redis:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = make_client(get_settings().redis_url)
    return _client


def use_redis(client: redis.Redis | None) -> None:
    """Swap the client (tests, CLI); None forgets it so settings decide again."""
    global _client, _open_until, _lost_invalidations
    with _lock:
        _client = client
        _open_until = 0.0
        _lost_invalidations = False


def invalidation_lost() -> None:
    """A committed write could not reach Redis to invalidate its cached copies. The first Redis call
    that succeeds afterwards moves the cache epoch on, so every process stops serving older entries."""
    global _lost_invalidations
    _lost_invalidations = True


def guarded(component: str, operation: Callable[[redis.Redis], T], fallback: Callable[[], T]) -> T:
    """Run a Redis operation; on failure (or while the breaker is open) use `fallback` and count it."""
    global _open_until, _lost_invalidations
    if time.monotonic() < _open_until:
        REDIS_DEGRADED.labels(component=component).inc()
        return fallback()
    try:
        client = get_redis()
        if _lost_invalidations:
            client.incr(CACHE_EPOCH_KEY)
            _lost_invalidations = False
        result = operation(client)
    except redis.RedisError as exc:
        _open_until = time.monotonic() + BREAKER_SECONDS
        REDIS_AVAILABLE.set(0)
        REDIS_DEGRADED.labels(component=component).inc()
        log.warning("redis unavailable, degrading", extra={"component": component, "error": type(exc).__name__})
        return fallback()
    if _open_until:
        _open_until = 0.0
        REDIS_AVAILABLE.set(1)
    return result


def ping() -> bool:
    try:
        return bool(get_redis().ping())
    except redis.RedisError:
        return False

