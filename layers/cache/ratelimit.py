"""Fixed-window rate limits per workspace and per credential, and a budget of failed authentications per
client address, in Redis; a bounded per-process limiter takes over while Redis is down so the API keeps
serving (and keeps limiting)."""
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

    def get(self, window_key: str) -> int:
        with self._lock:
            return self._counts.get(window_key, 0)


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


class FailureBudget:
    """Failed authentications per client address, in fixed windows: once an address has spent `budget` in a
    window, it is refused (429, Retry-After) until the window ends — before any credential it sends is
    looked up, so guessing keys or tokens costs the guesser a window, not us a database query."""

    def __init__(self, *, budget: int, window_seconds: int, fallback_keys: int) -> None:
        self.budget = budget
        self.window_seconds = window_seconds
        self._local = LocalLimiter(fallback_keys)

    def _window(self, client: str, now: float | None) -> tuple[str, int]:
        now = time.time() if now is None else now
        window = int(now // self.window_seconds)
        return f"rl:authfail:{client}:{window}", int((window + 1) * self.window_seconds - now) or 1

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until `client` may authenticate again; None while it has budget left."""
        key, reset = self._window(client, now)
        count = guarded("ratelimit", lambda r: int(r.get(key) or 0), lambda: self._local.get(key))
        return reset if count >= self.budget else None

    def spend(self, client: str, now: float | None = None) -> None:
        """Count one failed authentication of `client`."""
        key, _ = self._window(client, now)

        def in_redis(client_: redis.Redis) -> int:
            pipe = client_.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.window_seconds + 1)
            return int(pipe.execute()[0])

        guarded("ratelimit", in_redis, lambda: self._local.incr(key))
