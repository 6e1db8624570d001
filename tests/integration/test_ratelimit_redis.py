"""Rate limits counted in the real Redis: per workspace and per credential, with expiring windows.

Two `RateLimiter` instances stand in for two server processes: each has its own fallback
counters, so only Redis can make them agree. The system test checks the same across real workers.
"""
from __future__ import annotations

import redis

from layers.cache.ratelimit import Limit, RateLimiter
from shared.ids import new_id
from shared.settings import get_settings
from tests.functional.test_auth_throttle import BUDGET, WINDOW_SECONDS, probe_app
from tests.support.api import Api


def _counters(client: redis.Redis, pattern: str) -> dict[str, tuple[int, int]]:
    return {key: (int(client.get(key) or 0), client.ttl(key)) for key in client.scan_iter(match=pattern)}


def test_requests_are_counted_in_redis_with_a_ttl_no_longer_than_the_window(
    api: Api, real_redis: redis.Redis
) -> None:
    # GIVEN a fresh workspace WHEN it makes three requests
    replies = [api.get("/v1/contacts") for _ in range(3)]

    # THEN one workspace counter and one credential counter say 3, and both expire with the window
    window = get_settings().rate_limit_window_seconds
    for limit_name, owner in (("workspace", api.workspace_id), ("credential", api.api_key_id)):
        counters = _counters(real_redis, f"rl:{limit_name}:{owner}:*")
        assert len(counters) == 1, counters
        [(count, ttl)] = counters.values()
        assert count == 3
        assert 0 < ttl <= window + 1
    # ... and the headers count down from what Redis holds
    remaining = [int(r.header("RateLimit-Remaining") or -1) for r in replies]
    assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == 3
    assert 0 < int(replies[0].header("RateLimit-Reset") or 0) <= window


def test_two_workspaces_do_not_share_counters(api: Api, other_api: Api, real_redis: redis.Redis) -> None:
    # GIVEN A makes four requests and B one
    for _ in range(4):
        api.get("/v1/contacts")
    only = other_api.get("/v1/contacts")

    # THEN each has its own counter
    [(mine, _)] = _counters(real_redis, f"rl:workspace:{api.workspace_id}:*").values()
    [(theirs, _)] = _counters(real_redis, f"rl:workspace:{other_api.workspace_id}:*").values()
    assert (mine, theirs) == (4, 1)
    limit = get_settings().rate_limit_credential  # the tighter of the two limits is reported
    assert int(only.header("RateLimit-Remaining") or 0) == limit - 1


def test_limiters_in_two_processes_share_one_count_through_redis(real_redis: redis.Redis) -> None:
    # GIVEN two limiters (as in two worker processes) and a workspace limit of 5
    first = RateLimiter(window_seconds=60, fallback_keys=100)
    second = RateLimiter(window_seconds=60, fallback_keys=100)
    workspace, neighbour = new_id(), new_id()
    limits = [Limit("workspace", workspace, 5)]
    now = 1_900_000_000.0  # a fixed instant: the window cannot roll over during the test

    # WHEN requests alternate between them
    decisions = [(first if i % 2 else second).hit(limits, now=now) for i in range(7)]

    # THEN they are counted together: five pass, the sixth and seventh are refused
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].exceeded == "workspace" and decisions[5].reset_seconds > 0
    # ... a neighbouring workspace is untouched, and the next window starts again
    assert first.hit([Limit("workspace", neighbour, 5)], now=now).remaining == 4
    assert second.hit(limits, now=now + 60).allowed
    for key in real_redis.scan_iter(match=f"rl:workspace:{workspace}:*"):
        assert 0 < real_redis.ttl(key) <= 61


def test_failed_authentications_are_budgeted_in_redis_across_processes(api: Api, real_redis: redis.Redis) -> None:
    # GIVEN two app processes (each its own per-process fallback) and an address no other run uses
    first, second = probe_app(), probe_app()
    address = f"2001:db8::{new_id()[-4:].lower()}"
    # WHEN the address spends its budget of failures across both
    for n in range(BUDGET):
        assert (first if n % 2 else second).call(address, key="crm_not-a-key")[0] == 401
    # THEN both refuse it, even with a valid key, and Redis holds the count with the window's TTL
    assert first.call(address, key=api.api_key)[0] == 429
    assert second.call(address, key=api.api_key)[0] == 429
    [(count, ttl)] = _counters(real_redis, f"rl:authfail:{address}:*").values()
    assert count == BUDGET and 0 < ttl <= WINDOW_SECONDS + 1
    for key in real_redis.scan_iter(match=f"rl:authfail:{address}:*"):
        real_redis.delete(key)
