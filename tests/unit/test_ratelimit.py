"""Fixed-window rate limits in Redis, and the bounded per-process limiter while Redis is down."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis
from prometheus_client import REGISTRY

from layers.cache.client import make_client, use_redis
from layers.cache.ratelimit import FailureBudget, Limit, LocalLimiter, RateLimiter

WINDOW = 60
T0 = 1_800_000_000.0  # the start of a window (divisible by 60)


def _degraded(component: str) -> float:
    return REGISTRY.get_sample_value("crm_redis_degraded_total", {"component": component}) or 0.0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_client() -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    use_redis(client)
    yield client
    use_redis(None)


@pytest.fixture
def redis_down() -> Iterator[redis.Redis]:
    """The production client (make_client) pointed at a port nobody listens on."""
    client = make_client(f"redis://127.0.0.1:{_closed_port()}/0")
    use_redis(client)
    yield client
    use_redis(None)
    client.close()


def _workspace(limit: int, key: str = "ws1") -> Limit:
    return Limit("workspace", key, limit)


def _credential(limit: int, key: str = "key1") -> Limit:
    return Limit("credential", key, limit)


def test_counts_hits_within_a_window_and_refuses_past_the_limit(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a limit of 3 per minute
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)

    # WHEN four requests arrive in the same window
    decisions = [limiter.hit([_workspace(3)], now=T0 + i) for i in range(4)]

    # THEN the first three pass with a falling `remaining`, the fourth is refused by that limit
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 for d in decisions)
    assert decisions[3].exceeded == "workspace"
    assert decisions[0].exceeded is None


def test_reset_seconds_counts_down_to_the_end_of_the_window(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a one-minute window
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)

    # WHEN requests arrive at the start, in the middle and just before the end of it
    at_start = limiter.hit([_workspace(100)], now=T0)
    midway = limiter.hit([_workspace(100)], now=T0 + 45.5)
    at_end = limiter.hit([_workspace(100)], now=T0 + 59.9)

    # THEN reset_seconds says how long until the window turns over (never 0)
    assert at_start.reset_seconds == 60
    assert midway.reset_seconds == 14
    assert at_end.reset_seconds == 1


def test_a_new_window_starts_counting_again(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a limit exhausted in one window
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)
    for i in range(2):
        limiter.hit([_workspace(2)], now=T0 + i)
    assert not limiter.hit([_workspace(2)], now=T0 + 30).allowed

    # WHEN the next window begins
    decision = limiter.hit([_workspace(2)], now=T0 + WINDOW)

    # THEN the count starts from scratch
    assert decision.allowed
    assert decision.remaining == 1


def test_counters_expire_with_their_window(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a hit on two limits
    RateLimiter(window_seconds=WINDOW, fallback_keys=100).hit([_workspace(5), _credential(5)], now=T0)

    # WHEN the keys in Redis are inspected
    ttls = [redis_client.ttl(key) for key in redis_client.keys("*")]

    # THEN there is one counter per limit and each expires shortly after its window
    assert len(ttls) == 2
    assert all(0 < ttl <= WINDOW + 1 for ttl in ttls)


def test_limits_are_counted_per_key(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN one workspace that used up its limit
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)
    limiter.hit([_workspace(1, "ws1")], now=T0)
    assert not limiter.hit([_workspace(1, "ws1")], now=T0).allowed

    # WHEN another workspace asks in the same window
    decision = limiter.hit([_workspace(1, "ws2")], now=T0)

    # THEN it has its own budget
    assert decision.allowed


def test_the_tighter_of_two_limits_refuses(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a generous workspace limit and a tight credential limit
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)
    limits = [_workspace(100), _credential(2)]

    # WHEN three requests arrive
    decisions = [limiter.hit(limits, now=T0) for _ in range(3)]

    # THEN the credential limit is the one reported and the one that refuses
    assert [d.allowed for d in decisions] == [True, True, False]
    assert [(d.limit, d.remaining) for d in decisions[:2]] == [(2, 1), (2, 0)]
    assert decisions[2].exceeded == "credential"
    assert decisions[2].limit == 2


def test_a_shared_workspace_budget_refuses_a_fresh_credential(redis_client: fakeredis.FakeRedis) -> None:
    # GIVEN a workspace whose other credential used up almost all of the workspace's limit
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)
    for _ in range(4):
        limiter.hit([_workspace(5), _credential(10, "other-key")], now=T0)

    # WHEN a fresh credential of the same workspace makes two requests
    first = limiter.hit([_workspace(5), _credential(3, "fresh-key")], now=T0)
    second = limiter.hit([_workspace(5), _credential(3, "fresh-key")], now=T0)

    # THEN the headers describe the workspace quota (nearest exhaustion), and the workspace limit refuses
    assert (first.allowed, first.limit, first.remaining) == (True, 5, 0)
    assert (second.allowed, second.limit, second.exceeded) == (False, 5, "workspace")


def test_redis_down_still_decides_locally_and_counts_degradation(redis_down: redis.Redis) -> None:
    # GIVEN Redis refusing connections and a limit of 2
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)
    before = _degraded("ratelimit")

    # WHEN three requests arrive (the first trips the breaker, the others skip Redis)
    started = time.monotonic()
    decisions = [limiter.hit([_workspace(2)], now=T0) for _ in range(3)]
    elapsed = time.monotonic() - started

    # THEN the per-process limiter decides exactly as Redis would have, and every hit is counted as degraded
    assert [d.allowed for d in decisions] == [True, True, False]
    assert [d.remaining for d in decisions] == [1, 0, 0]
    assert decisions[2].exceeded == "workspace"
    assert _degraded("ratelimit") - before == 3
    # ... without the client sitting in connection retries (a refused connection fails at once)
    assert elapsed < 2.0


def test_redis_down_keeps_windows_and_keys_apart(redis_down: redis.Redis) -> None:
    # GIVEN Redis down and one workspace at its limit
    limiter = RateLimiter(window_seconds=WINDOW, fallback_keys=100)
    limiter.hit([_workspace(1, "ws1")], now=T0)

    # WHEN another workspace, and the same workspace in the next window, ask
    other = limiter.hit([_workspace(1, "ws2")], now=T0)
    next_window = limiter.hit([_workspace(1, "ws1")], now=T0 + WINDOW)

    # THEN each has its own count
    assert other.allowed
    assert next_window.allowed


def test_local_limiter_counts_per_key() -> None:
    # GIVEN a local limiter WHEN keys are hit THEN each key counts on its own
    limiter = LocalLimiter(max_keys=10)
    assert [limiter.incr("a"), limiter.incr("a"), limiter.incr("b"), limiter.incr("a")] == [1, 2, 1, 3]


def test_local_limiter_remembers_at_most_max_keys_dropping_the_oldest() -> None:
    # GIVEN a limiter that may remember 3 keys
    limiter = LocalLimiter(max_keys=3)

    # WHEN a thousand distinct keys are hit once each
    for i in range(1000):
        limiter.incr(f"k{i}")

    # THEN only the three most recent are still counted; anything older was forgotten
    assert [limiter.incr("k999"), limiter.incr("k998"), limiter.incr("k997")] == [2, 2, 2]
    assert limiter.incr("k996") == 1
    # k996 pushed out the least recently used of the three: k999
    assert limiter.incr("k999") == 1
    assert len(limiter._counts) <= 3  # the bound itself: memory cannot grow with the number of callers


def test_local_limiter_keeps_recently_used_keys() -> None:
    # GIVEN a full limiter whose oldest key is hit again
    limiter = LocalLimiter(max_keys=2)
    limiter.incr("old")
    limiter.incr("new")
    limiter.incr("old")

    # WHEN a third key arrives
    limiter.incr("third")

    # THEN the least recently used key ("new") is the one dropped
    assert limiter.incr("old") == 3
    assert limiter.incr("new") == 1


# ---- failed authentications per client address ---------------------------------------------------------------
def test_a_failure_budget_refuses_once_spent_until_its_window_ends(redis_client: fakeredis.FakeRedis) -> None:
    budget = FailureBudget(budget=2, window_seconds=WINDOW, fallback_keys=100)
    # GIVEN an address within its budget THEN it is not refused
    assert budget.retry_after("203.0.113.9", now=T0) is None
    budget.spend("203.0.113.9", now=T0 + 1)
    assert budget.retry_after("203.0.113.9", now=T0 + 2) is None
    # WHEN it spends the rest THEN it is refused for what is left of the window; others are not
    budget.spend("203.0.113.9", now=T0 + 3)
    assert budget.retry_after("203.0.113.9", now=T0 + 45.5) == 14
    assert budget.retry_after("198.51.100.7", now=T0 + 45.5) is None
    # AND the next window starts afresh; the counter expires with its window
    assert budget.retry_after("203.0.113.9", now=T0 + WINDOW) is None
    assert all(0 < redis_client.ttl(key) <= WINDOW + 1 for key in redis_client.keys("rl:authfail:*"))


def test_a_failure_budget_is_kept_per_process_while_redis_is_down(redis_down: redis.Redis) -> None:
    budget = FailureBudget(budget=1, window_seconds=WINDOW, fallback_keys=100)
    before = _degraded("ratelimit")
    budget.spend("203.0.113.9", now=T0)
    assert budget.retry_after("203.0.113.9", now=T0 + 1) == WINDOW - 1
    assert budget.retry_after("198.51.100.7", now=T0 + 1) is None
    assert _degraded("ratelimit") > before
