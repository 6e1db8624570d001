"""The WSGI adapter as a server sees it: `app.wsgi` driven with WSGI environ dicts (werkzeug's test
client, or raw dicts where the body must be streamed without a Content-Length)."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fakeredis
import pytest
from chalice.app import Response
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client, TestResponse

import app as composition
from layers.http.adapter import ChaliceWSGIAdapter
from layers.http.chalice_app import CrmChalice
from layers.http.endpoint import endpoint
from layers.http.requests import json_response
from layers.observability.logging import get_logger
from shared.ids import new_id
from tests.support.api import Api
from tests.support.contract import checked_wsgi

MIB = 1024 * 1024


def client() -> Client:
    return Client(checked_wsgi(composition.wsgi))


def auth(api: Api, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.api_key}", **extra}


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.data)
    assert body["status"] == status
    assert body["instance"] == response.headers["X-Request-Id"]
    return body


def raw_call(wsgi: Any, environ: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """Call a WSGI app with a hand-built environ; returns (status line, headers, body)."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(wsgi(environ, start_response))
    return seen["status"], seen["headers"], body


def environ(method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
            content_length: bool = True) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "test",
        "SERVER_PORT": "80", "REMOTE_ADDR": "192.0.2.10", "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http", "CONTENT_TYPE": "application/json",
    }
    if content_length:
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def contact_count(api: Api) -> int:
    return len(api.get("/v1/contacts?limit=200").json["data"])


# ---- gateway-level answers ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/nope", "/v1/contactz", "/v1/contacts/a/b/c", "/v1/"])
def test_unknown_paths_are_404_problems_not_403(api: Api, path: str) -> None:
    # GIVEN the server
    # WHEN a path no route matches is requested, with or without credentials
    anonymous = client().get(path)
    signed_in = client().get(path, headers=auth(api))
    # THEN 404 problem+json either way
    assert_problem(anonymous, 404)
    assert_problem(signed_in, 404)


def test_wrong_method_is_405_problem_with_allow(api: Api) -> None:
    # GIVEN a path that exists for GET and POST
    # WHEN it is called with PUT
    response = client().put("/v1/contacts", headers=auth(api), data="{}")
    # THEN 405 problem+json saying which methods are allowed
    assert_problem(response, 405)
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST"}


def test_body_over_one_mib_is_413_before_the_app_runs(api: Api) -> None:
    # GIVEN a body one byte over 1 MiB, declared by Content-Length, without credentials
    body = b"x" * (MIB + 1)
    # WHEN it is posted
    response = client().post("/v1/contacts", data=body, content_type="application/json")
    # THEN 413 — not 401, which the app would have answered
    assert_problem(response, 413)


def test_body_of_exactly_one_mib_reaches_the_app(api: Api) -> None:
    # GIVEN a body of exactly 1 MiB, without credentials
    # WHEN it is posted
    response = client().post("/v1/contacts", data=b" " * MIB, content_type="application/json")
    # THEN the app answers (401: it wants credentials), not the size guard
    assert_problem(response, 401)


def test_chunked_body_over_the_limit_is_413_and_writes_nothing(api: Api) -> None:
    # GIVEN a valid JSON body over 1 MiB streamed without a Content-Length (chunked)
    body = json.dumps({"first_name": "Ada", "job_title": "x" * (MIB + 10)}).encode()
    env = environ("POST", "/v1/contacts", body=body, content_length=False,
                  headers={**auth(api), "Transfer-Encoding": "chunked"})
    # WHEN it is posted
    status, headers, data = raw_call(checked_wsgi(composition.wsgi), env)
    # THEN 413 problem+json and nothing was created
    assert status.startswith("413")
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(data)["status"] == 413
    assert contact_count(api) == 0


def test_chunked_body_under_the_limit_is_read_whole(api: Api) -> None:
    # GIVEN a small JSON body streamed without a Content-Length
    body = json.dumps({"first_name": "Ada"}).encode()
    env = environ("POST", "/v1/contacts", body=body, content_length=False,
                  headers={**auth(api), "Transfer-Encoding": "chunked"})
    # WHEN it is posted
    status, _, data = raw_call(checked_wsgi(composition.wsgi), env)
    # THEN the contact is created from it
    assert status.startswith("201"), data
    assert json.loads(data)["first_name"] == "Ada"


# ---- request ids --------------------------------------------------------------------------------------
def test_headers_over_16_kib_are_431_before_the_app_runs(api: Api) -> None:
    # GIVEN a write whose headers take more than 16 KiB together (no single one is big), with a body
    headers = {**auth(api), **{f"X-Padding-{n}": "p" * 1000 for n in range(17)}}
    env = environ("POST", "/v1/contacts", body=json.dumps({"first_name": "Ada"}).encode(), headers=headers)
    # WHEN it is sent
    status, response_headers, data = raw_call(checked_wsgi(composition.wsgi), env)
    # THEN 431 problem+json, the body was read and dropped (the connection stays usable), nothing was created
    assert status.startswith("431 Request Header Fields Too Large")
    assert response_headers["Content-Type"] == "application/problem+json"
    assert json.loads(data)["type"] == "urn:crm:problem:headers-too-large"
    assert env["wsgi.input"].read() == b""
    assert contact_count(api) == 0


def test_one_huge_header_is_431_too_and_headers_just_under_the_limit_reach_the_app(api: Api) -> None:
    # GIVEN a 20 KB cookie WHEN a GET carries it THEN 431 (before any credential lookup)
    env = environ("GET", "/v1/contacts", headers={"Cookie": "crm_session=" + "c" * 20_000})
    assert raw_call(checked_wsgi(composition.wsgi), env)[0].startswith("431")
    # GIVEN headers of about 15 KB WHEN sent THEN the app answers as usual
    response = client().get("/v1/contacts", headers={**auth(api), "X-Padding": "p" * 15_000})
    assert response.status_code == 200, response.data


def test_the_header_limit_is_a_setting() -> None:
    small = ChaliceWSGIAdapter(composition.app, max_body_bytes=MIB, max_header_bytes=100)
    status, _, _ = raw_call(small, environ("GET", "/health", headers={"X-Padding": "p" * 100}))
    assert status.startswith("431")
    assert raw_call(small, environ("GET", "/health"))[0].startswith("200")


def test_request_id_comes_from_the_alb_trace_header(api: Api) -> None:
    # GIVEN an ALB trace header
    trace = {"X-Amzn-Trace-Id": "Root=1-abc-def;Sampled=1"}
    # WHEN requests arrive with it: a good one, an unknown path, and an oversized body
    ok = client().get("/v1/contacts", headers=auth(api, **trace))
    missing = client().get("/nope", headers=trace)
    too_big = client().post("/v1/contacts", data=b"x" * (MIB + 1), headers=trace)
    # THEN every answer carries the trace's root as X-Request-Id, and problems name it as instance
    for response in (ok, missing, too_big):
        assert response.headers["X-Request-Id"] == "1-abc-def"
    assert json.loads(missing.data)["instance"] == "1-abc-def"


def test_request_id_is_generated_when_there_is_no_trace(api: Api) -> None:
    # GIVEN requests without a trace header
    # WHEN they are answered
    ids = [client().get(path, headers=auth(api)).headers.get("X-Request-Id") for path in
           ("/v1/contacts", "/v1/contacts", "/nope", "/health")]
    # THEN each has its own, non-empty request id
    assert all(ids) and len(set(ids)) == len(ids)


# ---- client IP -----------------------------------------------------------------------------------------
def echo_app() -> CrmChalice:
    """A one-route app that answers the source IP the adapter handed it."""
    echo = CrmChalice(app_name="echo")

    @echo.route("/ip", methods=["GET"])
    @endpoint(summary="Echo the source IP", permission="public", tag="Test")
    def ip() -> Response:
        request = echo.current_request
        assert request is not None
        return json_response({"ip": request.context["identity"]["sourceIp"]})

    return echo


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "expected"),
    [
        pytest.param(1, "203.0.113.9", "203.0.113.9", id="one-hop"),
        pytest.param(1, "6.6.6.6, 203.0.113.9", "203.0.113.9", id="one-hop-ignores-spoofed-left"),
        pytest.param(2, "6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7", id="two-hops"),
        pytest.param(3, "198.51.100.7", "198.51.100.7", id="fewer-entries-than-hops"),
        pytest.param(1, None, "192.0.2.10", id="no-header-uses-peer"),
        pytest.param(0, "203.0.113.9", "192.0.2.10", id="no-trusted-proxy-ignores-header"),
    ],
)
def test_client_ip_is_taken_from_x_forwarded_for_by_trusted_hops(
    hops: int, forwarded_for: str | None, expected: str
) -> None:
    # GIVEN an adapter trusting `hops` proxies in front of it
    adapter = ChaliceWSGIAdapter(echo_app(), max_body_bytes=1024, trusted_proxy_hops=hops, access_log=False)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    # WHEN a request arrives from peer 192.0.2.10
    status, _, data = raw_call(adapter, environ("GET", "/ip", headers=headers))
    # THEN the app sees the address the outermost trusted proxy saw
    assert status.startswith("200")
    assert json.loads(data)["ip"] == expected


def test_the_real_app_limits_public_writes_by_the_forwarded_client_ip(fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a session exchange from a client behind the ALB (one trusted hop)
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}
    # WHEN it is posted (and refused: the token is junk)
    response = client().post("/v1/sessions", json={"id_token": "junk"}, headers=headers)
    # THEN the per-client limit was counted against the forwarded client, not the spoofed address
    assert response.status_code == 401
    keys = fake_redis.keys("rl:client:*")
    assert [str(k).split(":")[2] for k in keys] == ["203.0.113.9"]


# ---- HEAD ----------------------------------------------------------------------------------------------
def test_head_answers_like_get_without_a_body(api: Api) -> None:
    # GIVEN a contact
    created = api.post("/v1/contacts", {"first_name": "Ada"}).json
    path = f"/v1/contacts/{created['id']}"
    # WHEN it and /health are fetched with GET and HEAD
    get, head = client().get(path, headers=auth(api)), client().head(path, headers=auth(api))
    health = client().head("/health")
    # THEN HEAD has GET's status and headers, and no body
    assert head.status_code == get.status_code == 200
    assert head.data == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
    assert health.status_code == 200 and health.data == b""


# ---- thread safety -------------------------------------------------------------------------------------
def test_concurrent_requests_each_get_their_own_record(api: Api, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN 50 contacts, not cached (so every read goes through the database)
    names = [f"person-{i:02d}-{new_id()}" for i in range(50)]
    batch = api.post("/v1/contacts/batch/create", {"inputs": [{"first_name": n} for n in names]})
    assert batch.status == 200
    expected = {r["record"]["id"]: r["record"]["first_name"] for r in batch.json["results"]}
    fake_redis.flushall()

    def fetch(record_id: str) -> tuple[str, int, dict[str, Any]]:
        response = client().get(f"/v1/contacts/{record_id}", headers=auth(api))
        return record_id, response.status_code, json.loads(response.data)

    # WHEN they are all fetched at once from 50 threads
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(fetch, list(expected)))
    # THEN every thread got the record it asked for
    for record_id, status, body in results:
        assert status == 200, body
        assert body["id"] == record_id
        assert body["first_name"] == expected[record_id]


# ---- observability -------------------------------------------------------------------------------------
def requests_total(method: str, route: str, status: str) -> float:
    metrics = client().get("/metrics")
    assert metrics.status_code == 200
    for family in text_string_to_metric_families(metrics.data.decode()):
        for sample in family.samples:
            if sample.name == "crm_http_requests_total" and sample.labels == {
                "method": method, "route": route, "status": status,
            }:
                return float(sample.value)
    return 0.0


def test_metrics_count_requests_by_route_template_and_status(api: Api) -> None:
    # GIVEN a contact and the current counts
    created = api.post("/v1/contacts", {"first_name": "Ada"}).json
    route = "/v1/contacts/{record_id}"
    ok_before = requests_total("GET", route, "200")
    missing_before = requests_total("GET", route, "404")
    # WHEN it is read three times through the server, and a missing one once
    for _ in range(3):
        assert client().get(f"/v1/contacts/{created['id']}", headers=auth(api)).status_code == 200
    assert client().get(f"/v1/contacts/{new_id()}", headers=auth(api)).status_code == 404
    unmatched = f"/nope-{new_id()}"
    client().get(unmatched)
    # THEN /metrics counts them under the route template (never the raw path) and status
    text = client().get("/metrics").data.decode()
    assert 'crm_http_requests_total{method="GET",route="/v1/contacts/{record_id}",status="200"}' in text
    assert requests_total("GET", route, "200") == ok_before + 3
    assert requests_total("GET", route, "404") == missing_before + 1
    assert created["id"] not in text and unmatched not in text
    assert "crm_http_request_duration_seconds_bucket" in text


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """What the JSON logger writes to stdout during the test. Its handler holds the stdout of the
    moment the logger was built (in a test run, pytest's own capture, which capsys cannot read),
    so the handler's stream is pointed at a buffer for the test and restored after."""
    handler = get_logger().registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def logged_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_access_log_is_one_json_line_per_request(api: Api, access_log: io.StringIO) -> None:
    # GIVEN an adapter with the access log on
    adapter = Client(checked_wsgi(ChaliceWSGIAdapter(composition.app, max_body_bytes=MIB, access_log=True)))
    created = api.post("/v1/contacts", {"first_name": "Ada"}).json
    # WHEN it answers a read, a miss and an unknown path
    adapter.get(f"/v1/contacts/{created['id']}", headers=auth(api, **{"X-Amzn-Trace-Id": "Root=1-log-one"}))
    adapter.get(f"/v1/contacts/{new_id()}", headers=auth(api))
    adapter.get("/nope")
    # THEN stdout holds exactly three JSON lines with the request's id, workspace, route, status and latency
    lines = logged_lines(access_log)
    assert len(lines) == 3
    first, second, third = lines
    assert first["request_id"] == "1-log-one"
    assert first["workspace_id"] == api.workspace_id
    assert (first["route"], first["status"], first["method"]) == ("/v1/contacts/{record_id}", 200, "GET")
    assert (second["route"], second["status"]) == ("/v1/contacts/{record_id}", 404)
    assert (third["route"], third["status"]) == ("<unmatched>", 404)
    assert third.get("workspace_id") is None
    for line in lines:
        assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0
        assert line["request_id"]
    assert api.api_key not in json.dumps(lines)


def test_access_log_off_writes_nothing(api: Api, access_log: io.StringIO) -> None:
    # GIVEN an adapter with the access log off
    adapter = Client(checked_wsgi(ChaliceWSGIAdapter(composition.app, max_body_bytes=MIB, access_log=False)))
    # WHEN it answers
    adapter.get("/health")
    # THEN nothing is logged
    assert logged_lines(access_log) == []


# ---- docs ----------------------------------------------------------------------------------------------
def test_docs_page_loads_the_openapi_document() -> None:
    # GIVEN the server
    # WHEN the docs page and the document are fetched
    page = client().get("/docs")
    document = client().get("/v1/openapi.json")
    # THEN the page is HTML that loads the document, and the document is OpenAPI 3.1 JSON with the routes
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "/v1/openapi.json" in page.data.decode()
    assert document.status_code == 200
    assert document.headers["Content-Type"].startswith("application/json")
    spec = json.loads(document.data)
    assert spec["openapi"].startswith("3.1")
    assert "/v1/contacts/{record_id}" in spec["paths"]
    assert "get" in spec["paths"]["/v1/contacts/{record_id}"]
