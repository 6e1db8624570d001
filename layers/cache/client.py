"""The Redis client (or the in-process stand-in) and a breaker so a Redis outage costs no latency."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from layers.observability.metrics import REDIS_AVAILABLE, REDIS_DEGRADED
from shared.settings import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_client: redis.Redis | None = None
_open_until = 0.0  # breaker: skip Redis until this monotonic time after a failure
BREAKER_SECONDS = 1.0


def make_client(url: str | None) -> redis.Redis:
    if url is None:
        import fakeredis  # the embedded default: an in-process Redis with Lua support

        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        # redis-py 6+ retries timeouts three times with backoff by default: ~9 s per call against a paused
        # Redis. A failed call is the breaker's business (and a cache miss), never a retry on the request path.
        retry=Retry(NoBackoff(), 0),
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
    global _client, _open_until
    with _lock:
        _client = client
        _open_until = 0.0


def guarded(component: str, operation: Callable[[redis.Redis], T], fallback: Callable[[], T]) -> T:
    """Run a Redis operation; on failure (or while the breaker is open) use `fallback` and count it."""
    global _open_until
    if time.monotonic() < _open_until:
        REDIS_DEGRADED.labels(component=component).inc()
        return fallback()
    try:
        result = operation(get_redis())
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


def get_text(component: str, key: str) -> str | None:
    """GET one key as text; None when absent or when Redis is unavailable (a miss)."""
    value = guarded(component, lambda r: r.get(key), lambda: None)
    return None if value is None else str(value)


def ping() -> bool:
    try:
        return bool(get_redis().ping())
    except redis.RedisError:
        return False

