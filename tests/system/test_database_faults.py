"""`crm serve` (granian, 2 workers, default limits) whose DATABASE_URL goes through a FaultProxy.

While the database is frozen or killed, requests answer 503 problem+json with Retry-After and /ready
answers 503 (no hang, no 500); once it answers again, both recover by themselves. The figures (time to
the first 503, time to recover) are printed, never asserted: a loaded machine is slow.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.faults import FaultProxy
from tests.system.test_serve import (  # noqa: F401 - fixtures shared with the API tier's tests
    Server,
    environment,
    start_server,
    workspace,
)

pytestmark = pytest.mark.system
RECOVERY_DEADLINE_SECONDS = 30


@pytest.fixture
def proxied(environment: dict[str, str], tmp_path: Path) -> Iterator[tuple[Server, FaultProxy]]:  # noqa: F811
    """A server of its own whose every database connection passes through the proxy."""
    url = make_url(environment["DATABASE_URL"])
    proxy = FaultProxy(url.host or "127.0.0.1", url.port or 3306)
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = start_server({**environment, "DATABASE_URL": through_proxy}, tmp_path)
    yield server, proxy
    proxy.resume()
    server.stop()
    proxy.close()
    print(f"---- server output ----\n{server.output()}")  # shown when the test failed


def _get(server: Server, path: str, headers: dict[str, str]) -> tuple[httpx.Response, float]:
    """One request on a new connection (so the kernel spreads them over both workers), and its seconds."""
    started = time.monotonic()
    with server.client(headers=headers) as client:  # its 30 s timeout is the outer deadline
        reply = client.get(path)
    return reply, time.monotonic() - started


def _assert_503(reply: httpx.Response) -> None:
    assert reply.status_code == 503, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Retry-After"] == "1"
    assert reply.json()["status"] == 503


def _recovery_seconds(server: Server, path: str, headers: dict[str, str]) -> float:
    """Until four requests in a row (new connections: both workers) answer 200."""
    started, in_a_row = time.monotonic(), 0
    while in_a_row < 4:
        reply, _ = _get(server, path, headers)
        assert reply.status_code in (200, 503), reply.text
        in_a_row = in_a_row + 1 if reply.status_code == 200 else 0
        assert time.monotonic() - started < RECOVERY_DEADLINE_SECONDS, f"{path} did not recover"
        if in_a_row == 0:
            time.sleep(0.05)
    return time.monotonic() - started


def test_a_frozen_database_answers_503_and_the_server_recovers_when_it_resumes(
    proxied: tuple[Server, FaultProxy], workspace: dict[str, str],  # noqa: F811
) -> None:
    server, proxy = proxied
    auth = {"Authorization": f"Bearer {workspace['api_key']}"}
    # GIVEN a server whose workers hold live pooled connections
    for _ in range(6):
        assert _get(server, "/v1/contacts?limit=1", auth)[0].status_code == 200

    # WHEN the database freezes
    proxy.freeze()
    timings = []
    for _ in range(6):
        reply, seconds = _get(server, "/v1/contacts?limit=1", auth)
        _assert_503(reply)
        timings.append(seconds)
    started = time.monotonic()
    with server.client(headers={**auth, "Content-Type": "application/json"}) as client:
        write = client.post("/v1/contacts", json={"email": "frozen-system@example.com"})
    write_seconds = time.monotonic() - started
    ready, ready_seconds = _get(server, "/ready", {})

    # THEN reads and writes answered 503 + Retry-After, and readiness 503 naming the database
    _assert_503(write)
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": False, "redis": True}
    assert ready.headers["content-type"].startswith("application/problem+json")

    # ... and when it resumes, the API and readiness recover by themselves
    proxy.resume()
    recovered = _recovery_seconds(server, "/v1/contacts?limit=1", auth)
    ready_recovered = _recovery_seconds(server, "/ready", {})
    print(f"frozen: 503s after {', '.join(f'{t:.2f}' for t in timings)} s; write 503 after {write_seconds:.2f} s; "
          f"/ready 503 after {ready_seconds:.2f} s; API recovered {recovered:.2f} s after resume, "
          f"/ready {ready_recovered:.2f} s after that")
    # ... and the refused write left nothing behind
    found = _get(server, "/v1/contacts?limit=200", auth)[0].json()["data"]
    assert "frozen-system@example.com" not in {c["email"] for c in found}


def test_a_killed_database_answers_503_and_the_server_recovers_when_it_is_back(
    proxied: tuple[Server, FaultProxy], workspace: dict[str, str],  # noqa: F811
) -> None:
    server, proxy = proxied
    auth = {"Authorization": f"Bearer {workspace['api_key']}"}
    for _ in range(4):
        assert _get(server, "/v1/contacts?limit=1", auth)[0].status_code == 200
    # WHEN the database is killed
    proxy.cut()
    timings = []
    for _ in range(4):
        reply, seconds = _get(server, "/v1/contacts?limit=1", auth)
        _assert_503(reply)
        timings.append(seconds)
    ready, _ = _get(server, "/ready", {})
    assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
    # THEN it is back, both recover by themselves
    proxy.resume()
    recovered = _recovery_seconds(server, "/v1/contacts?limit=1", auth)
    _recovery_seconds(server, "/ready", {})
    print(f"killed: 503s after {', '.join(f'{t:.2f}' for t in timings)} s; recovered {recovered:.2f} s after restart")
