"""Rate limits per workspace, per credential and per client: RateLimit-* headers, 429 + Retry-After,
and the per-process fallback while Redis is down.

The real app's limits are in the tens of thousands, so most tests build a small app from the same
middleware classes with small `Settings`, and one probe route of each kind.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator

import fakeredis
import pytest
from chalice.app import Response
from chalice.test import Client
from prometheus_client.parser import text_string_to_metric_families

from functions.workspaces.service import Resolver
from layers.auth.verifier import get_verifier
from layers.cache.client import make_client, use_redis
from layers.http.chalice_app import CrmChalice
from layers.http.endpoint import endpoint
from layers.http.middleware import AuthMiddleware, ErrorMiddleware, RateLimitMiddleware
from layers.http.requests import json_response, scope_of
from shared.settings import Settings
from tests.support.api import Api, Reply

# A window far longer than the test, so no test straddles two windows.
WINDOW_SECONDS = 1_000_000


def small_app(*, workspace: int = 1000, credential: int = 1000) -> CrmChalice:
    settings = Settings(RATE_LIMIT_WORKSPACE=workspace, RATE_LIMIT_CREDENTIAL=credential,
                        RATE_LIMIT_WINDOW_SECONDS=WINDOW_SECONDS)
    app = CrmChalice(app_name="ratelimit-probe")
    app.register_middleware(ErrorMiddleware(), "http")
    app.register_middleware(AuthMiddleware(app, Resolver(), get_verifier), "http")
    app.register_middleware(RateLimitMiddleware(app, settings), "http")

    @app.route("/probe", methods=["GET"])
    @endpoint(summary="A read", permission="read", tag="Test")
    def probe() -> Response:
        request = app.current_request
        assert request is not None
        return json_response({"workspace_id": scope_of(request).workspace_id})

    @app.route("/public", methods=["POST"])
    @endpoint(summary="A public write (like the session exchange)", permission="public", tag="Test")
    def public() -> Response:
        return json_response({"ok": True})

    return app


def call(app: CrmChalice, api: Api | None, method: str = "GET", path: str = "/probe") -> Reply:
    headers = {"Authorization": f"Bearer {api.api_key}"} if api else {}
    with Client(app) as client:
        response = client.http.request(method, path, headers=headers)
    return Reply(response.status_code, dict(response.headers), response.body)


def limit_headers(reply: Reply) -> tuple[int, int, int]:
    return (int(reply.header("RateLimit-Limit") or -1), int(reply.header("RateLimit-Remaining") or -1),
            int(reply.header("RateLimit-Reset") or -1))


def second_key(api: Api) -> Api:
    reply = api.post("/v1/api-keys", {"name": "second", "scopes": ["read"]})
    assert reply.status == 201
    return api.with_key(reply.json["key"])


def degraded_count(component: str) -> float:
    """What /metrics says about operations served without Redis."""
    metrics = Api("", "", "", "").get("/metrics", auth=False)
    for family in text_string_to_metric_families(metrics.raw.decode()):
        for sample in family.samples:
            if sample.name == "crm_redis_degraded_total" and sample.labels.get("component") == component:
                return float(sample.value)
    return 0.0


@pytest.fixture
def redis_down(fake_redis: fakeredis.FakeRedis) -> Iterator[None]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = make_client(f"redis://127.0.0.1:{port}/0")
    use_redis(dead)
    yield
    use_redis(fake_redis)
    dead.close()


# ---- the real app -----------------------------------------------------------------------------------------
def test_every_authenticated_answer_of_the_real_app_carries_ratelimit_headers(api: Api) -> None:
    # GIVEN the real app and an API key
    created = api.post("/v1/contacts", {"first_name": "Ada"})
    path = f"/v1/contacts/{created.json['id']}"
    # WHEN it reads, writes, archives and makes mistakes
    replies = {
        "create": created,
        "get": api.get(path),
        "list": api.get("/v1/contacts"),
        "patch": api.patch(path, {"job_title": "Analyst"}),
        "delete": api.delete(path),
        "not found": api.get(path),
        "invalid": api.post("/v1/contacts", {"email": "nope"}),
    }
    # THEN every answer says the limit, what is left and when it resets
    for name, reply in replies.items():
        limit, remaining, reset = limit_headers(reply)
        assert limit > 0 and 0 <= remaining < limit and reset > 0, (name, reply.headers)


def test_unauthenticated_and_public_reads_carry_no_workspace_limits(api: Api) -> None:
    # GIVEN the real app
    # WHEN a request has no credential, or reads a public route
    anonymous = api.get("/v1/contacts", auth=False)
    health = api.get("/health", auth=False)
    # THEN there is no workspace budget to report
    assert anonymous.status == 401 and anonymous.header("RateLimit-Limit") is None
    assert health.status == 200 and health.header("RateLimit-Limit") is None


# ---- a small app with small limits ------------------------------------------------------------------------
def test_remaining_counts_down_with_each_request(api: Api) -> None:
    # GIVEN a credential limit of 5
    app = small_app(credential=5)
    # WHEN the same key calls four times
    replies = [call(app, api) for _ in range(4)]
    # THEN each answer reports the limit and one fewer remaining
    assert [r.status for r in replies] == [200] * 4
    assert [limit_headers(r)[:2] for r in replies] == [(5, 4), (5, 3), (5, 2), (5, 1)]
    assert all(0 < limit_headers(r)[2] <= WINDOW_SECONDS for r in replies)


def test_exceeding_the_limit_is_429_with_retry_after(api: Api) -> None:
    # GIVEN a credential limit of 2, used up
    app = small_app(credential=2)
    assert [call(app, api).status for _ in range(2)] == [200, 200]
    # WHEN the key calls again
    refused = call(app, api)
    # THEN 429 problem+json, with Retry-After and the RateLimit headers at zero
    assert refused.status == 429
    assert refused.header("Content-Type") == "application/problem+json"
    assert refused.json["type"] == "urn:crm:problem:rate-limited"
    retry_after = int(refused.header("Retry-After") or 0)
    assert 0 < retry_after <= WINDOW_SECONDS
    assert limit_headers(refused) == (2, 0, retry_after)


def test_the_workspace_limit_is_shared_by_its_keys_but_not_by_other_workspaces(api: Api, other_api: Api) -> None:
    # GIVEN a workspace limit of 3 (credentials have plenty) used up by one key
    app = small_app(workspace=3, credential=1000)
    colleague = second_key(api)
    assert [call(app, api).status for _ in range(3)] == [200, 200, 200]
    # WHEN another key of the same workspace, and a key of another workspace, call
    same_workspace = call(app, colleague)
    other_workspace = call(app, other_api)
    # THEN the colleague is refused (the workspace is out) and the other workspace is served
    assert same_workspace.status == 429
    assert other_workspace.status == 200
    assert other_workspace.json["workspace_id"] == other_api.workspace_id
    assert limit_headers(other_workspace)[:2] == (3, 2)


def test_the_credential_limit_is_per_key(api: Api) -> None:
    # GIVEN a credential limit of 2 (the workspace has plenty) used up by one key
    app = small_app(workspace=1000, credential=2)
    colleague = second_key(api)
    assert [call(app, api).status for _ in range(3)] == [200, 200, 429]
    # WHEN another key of the same workspace calls
    reply = call(app, colleague)
    # THEN it has its own budget
    assert reply.status == 200
    assert limit_headers(reply)[:2] == (2, 1)


def test_public_writes_are_limited_per_client(api: Api) -> None:
    # GIVEN a credential-sized limit of 2 and a public write route
    app = small_app(credential=2)
    # WHEN one client calls it three times without credentials
    replies = [call(app, None, "POST", "/public") for _ in range(3)]
    # THEN the third is refused
    assert [r.status for r in replies] == [200, 200, 429]
    assert limit_headers(replies[0])[:2] == (2, 1)


@pytest.mark.usefixtures("redis_down")
def test_without_redis_requests_are_still_served_limited_and_counted_as_degraded(api: Api) -> None:
    # GIVEN Redis is unreachable and a credential limit of 3
    app = small_app(credential=3)
    before = degraded_count("ratelimit")
    # WHEN the key calls four times
    replies = [call(app, api) for _ in range(4)]
    # THEN it is served with headers by the per-process limiter, which still refuses past the limit,
    # and the metric says limits ran without Redis
    assert [r.status for r in replies] == [200, 200, 200, 429]
    assert [limit_headers(r)[:2] for r in replies[:3]] == [(3, 2), (3, 1), (3, 0)]
    assert degraded_count("ratelimit") >= before + 4
