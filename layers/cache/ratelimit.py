"""Fixed-window rate limits per workspace and per credential, in Redis; a bounded per-process
limiter takes over while Redis is down so the API keeps serving."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import redis

from layers.cache.client import guarded


@dataclass(frozen=True)
class Limit:
    name: str  # "workspace" | "credential"
    key: str
    limit: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    exceeded: str | None = None  # which limit refused the request


class LocalLimiter:
    """Per-process fixed windows, at most `max_keys` remembered (oldest dropped first)."""

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def incr(self, window_key: str) -> int:
        with self._lock:
            count = self._counts.pop(window_key, 0) + 1
            self._counts[window_key] = count
            while len(self._counts) > self._max_keys:
                self._counts.popitem(last=False)
            return count


class RateLimiter:
    def __init__(self, *, window_seconds: int, fallback_keys: int) -> None:
        self.window_seconds = window_seconds
        self._local = LocalLimiter(fallback_keys)

    def hit(self, limits: list[Limit], now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        window = int(now // self.window_seconds)
        reset = int((window + 1) * self.window_seconds - now) or 1
        keys = [f"rl:{lim.name}:{lim.key}:{window}" for lim in limits]

        def in_redis(client: redis.Redis) -> list[int]:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, self.window_seconds + 1)
            results = pipe.execute()
            return [int(results[i * 2]) for i in range(len(keys))]

        counts = guarded("ratelimit", in_redis, lambda: [self._local.incr(k) for k in keys])
        for lim, count in zip(limits, counts, strict=True):
            if count > lim.limit:
                return Decision(False, lim.limit, 0, reset, exceeded=lim.name)
        # Report the limit nearest exhaustion, so RateLimit-Limit and -Remaining describe the same quota.
        binding, used = min(zip(limits, counts, strict=True), key=lambda pair: pair[0].limit - pair[1])
        return Decision(True, binding.limit, max(binding.limit - used, 0), reset)
