"""Failed authentication is budgeted per client address: past the budget, 429 + Retry-After before any lookup.

The app under test has a budget no suite spends (tests/conftest.py); these tests build the same middleware
(errors → auth with a FailureBudget) with a budget of 3 around two probe routes, and drive it through the
WSGI adapter so the client address comes from X-Forwarded-For and TRUSTED_PROXY_HOPS as in production.
"""
from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
from chalice.app import Response

from functions.workspaces.service import Resolver
from layers.auth.firebase import FirebaseIdentity
from layers.auth.principals import UserPrincipal
from layers.auth.verifier import get_verifier
from layers.cache.client import make_client, use_redis
from layers.cache.ratelimit import FailureBudget
from layers.http.adapter import ChaliceWSGIAdapter
from layers.http.chalice_app import CrmChalice
from layers.http.endpoint import endpoint
from layers.http.middleware import AuthMiddleware, ErrorMiddleware
from layers.http.requests import json_response, scope_of
from shared.context import Scope
from shared.errors import Unauthorized
from shared.settings import Settings
from tests.support.api import Api

BUDGET = 3
WINDOW_SECONDS = 1_000_000  # far longer than a test: no test straddles two windows


@dataclass
class CountingResolver:
    """The real resolver, counting the API key look-ups it is asked for."""

    inner: Resolver = field(default_factory=Resolver)
    key_lookups: int = 0

    def resolve_api_key(self, raw_key: str) -> Scope | None:
        self.key_lookups += 1
        return self.inner.resolve_api_key(raw_key)

    def resolve_user(self, identity: FirebaseIdentity) -> UserPrincipal:
        return self.inner.resolve_user(identity)

    def membership_scope(self, user: UserPrincipal, workspace_id: str | None) -> Scope | None:
        return self.inner.membership_scope(user, workspace_id)


@dataclass
class Probe:
    wsgi: ChaliceWSGIAdapter
    resolver: CountingResolver

    def call(self, client_ip: str, *, key: str | None, method: str = "GET", path: str = "/probe",
             forwarded: str | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "REMOTE_ADDR": "10.0.0.2",
            "HTTP_X_FORWARDED_FOR": forwarded or client_ip, "wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0",
        }
        if key is not None:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

        body = b"".join(self.wsgi(environ, start_response))
        return seen["status"], seen["headers"], json.loads(body)


def probe_app(*, budget: int = BUDGET, hops: int = 1) -> Probe:
    settings = Settings(AUTH_FAILURE_LIMIT=budget, AUTH_FAILURE_WINDOW_SECONDS=WINDOW_SECONDS, TRUSTED_PROXY_HOPS=hops)
    resolver = CountingResolver()
    app = CrmChalice(app_name="auth-throttle-probe")
    app.register_middleware(ErrorMiddleware(), "http")
    app.register_middleware(AuthMiddleware(app, resolver, get_verifier, FailureBudget(
        budget=settings.auth_failure_limit, window_seconds=settings.auth_failure_window_seconds,
        fallback_keys=100)), "http")

    @app.route("/probe", methods=["GET"])
    @endpoint(summary="A read", permission="read", tag="Test")
    def probe() -> Response:
        request = app.current_request
        assert request is not None
        return json_response({"workspace_id": scope_of(request).workspace_id})

    @app.route("/sign-in", methods=["POST"])
    @endpoint(summary="A public sign-in whose token never verifies", permission="public", tag="Test")
    def sign_in() -> Response:
        raise Unauthorized("the ID token did not verify")

    @app.route("/status", methods=["GET"])
    @endpoint(summary="A public read", permission="public", tag="Test")
    def status() -> Response:
        return json_response({"ok": True})

    return Probe(ChaliceWSGIAdapter(app, max_body_bytes=1024, trusted_proxy_hops=settings.trusted_proxy_hops,
                                    access_log=False), resolver)


def spend_budget(probe: Probe, client_ip: str) -> None:
    for _ in range(BUDGET):
        status, _, _ = probe.call(client_ip, key="crm_not-a-key")
        assert status == 401


def test_past_the_budget_an_address_gets_429_with_retry_after_before_any_key_lookup(api: Api) -> None:
    probe = probe_app()
    # GIVEN an address that failed to authenticate as often as the budget allows
    spend_budget(probe, "203.0.113.9")
    lookups = probe.resolver.key_lookups
    # WHEN it sends another request — even with a valid key
    status, headers, body = probe.call("203.0.113.9", key=api.api_key)
    # THEN 429 problem+json with Retry-After, and the key was not looked up
    assert status == 429, body
    assert headers["Content-Type"] == "application/problem+json"
    assert body["type"] == "urn:crm:problem:rate-limited"
    assert 0 < int(headers["Retry-After"]) <= WINDOW_SECONDS
    assert probe.resolver.key_lookups == lookups


def test_other_addresses_and_successes_are_not_affected(api: Api) -> None:
    probe = probe_app()
    # GIVEN one address past its budget
    spend_budget(probe, "203.0.113.9")
    # WHEN another address authenticates, fails once, and authenticates again THEN it is served
    assert probe.call("198.51.100.7", key=api.api_key)[0] == 200
    assert probe.call("198.51.100.7", key="crm_wrong")[0] == 401
    # AND successes spend nothing: many of them leave the budget whole
    for _ in range(BUDGET * 3):
        assert probe.call("198.51.100.7", key=api.api_key)[0] == 200
    assert probe.call("198.51.100.7", key="crm_wrong")[0] == 401
    # AND public reads are never throttled
    assert probe.call("203.0.113.9", key=None, path="/status")[0] == 200


def test_missing_and_malformed_credentials_and_failed_sign_ins_spend_it_too() -> None:
    probe = probe_app()
    # GIVEN an address that sends no credential, a malformed one and a sign-in token that does not verify
    assert probe.call("203.0.113.9", key=None)[0] == 401
    assert probe.call("203.0.113.9", key="")[0] == 401
    assert probe.call("203.0.113.9", key=None, method="POST", path="/sign-in")[0] == 401
    # WHEN it tries again THEN it has spent its budget, on the sign-in route as well
    assert probe.call("203.0.113.9", key=None, method="POST", path="/sign-in")[0] == 429
    assert probe.call("203.0.113.9", key="crm_x")[0] == 429


def test_the_address_is_the_one_trusted_proxies_saw() -> None:
    # GIVEN one trusted proxy: a client cannot escape its budget by putting other addresses on the left
    probe = probe_app(hops=1)
    for n in range(BUDGET):
        assert probe.call("", key="crm_x", forwarded=f"6.6.6.{n}, 203.0.113.9")[0] == 401
    assert probe.call("", key="crm_x", forwarded="7.7.7.7, 203.0.113.9")[0] == 429
    # AND with two trusted proxies the client is the second entry from the right
    probe = probe_app(hops=2)
    for _ in range(BUDGET):
        assert probe.call("", key="crm_x", forwarded="192.0.2.44, 10.0.0.1")[0] == 401
    assert probe.call("", key="crm_x", forwarded="192.0.2.44, 10.0.0.9")[0] == 429
    assert probe.call("", key="crm_x", forwarded="198.51.100.7, 10.0.0.1")[0] == 401


@pytest.fixture
def redis_down(fake_redis: fakeredis.FakeRedis) -> Iterator[None]:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    dead = make_client(f"redis://127.0.0.1:{port}/0")
    use_redis(dead)
    yield
    use_redis(fake_redis)
    dead.close()


@pytest.mark.usefixtures("redis_down")
def test_without_redis_the_budget_is_kept_per_process() -> None:
    probe = probe_app()
    spend_budget(probe, "203.0.113.9")
    assert probe.call("203.0.113.9", key="crm_x")[0] == 429
    assert probe.call("198.51.100.7", key="crm_x")[0] == 401


def test_the_budget_is_20_failures_a_minute_unless_configured() -> None:
    settings = Settings()
    assert (Settings.model_fields["auth_failure_limit"].default,
            Settings.model_fields["auth_failure_window_seconds"].default) == (20, 60)
    assert settings.auth_failure_window_seconds == 60
