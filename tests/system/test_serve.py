"""`crm serve` as a real process (granian, 2 workers) on MariaDB and Redis, over real HTTP.

Everything the adapter promises is checked here on the wire: health and readiness, a record's
round trip with its ETag, 404/413 as problem+json, request ids, metrics summed over worker
processes, rate limits shared by the workers, and a graceful stop on SIGTERM.
The server's output goes to a file, printed when a test fails.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.support.contract import check_httpx
from tests.support.databases import scratch_database

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
CRM = Path(sys.executable).parent / "crm"
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/crm_test")
REDIS_URL = os.environ.get("TEST_SYSTEM_REDIS_URL", "redis://127.0.0.1:6379/14")
STOP_DEADLINE_SECONDS = 30


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the system tests", pytrace=False)
    pytest.skip(f"{message}; start it or set TEST_DATABASE_URL / TEST_SYSTEM_REDIS_URL")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    metrics_dir: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        """Every answer is checked against the OpenAPI document."""
        return httpx.Client(base_url=self.base_url, timeout=30, event_hooks={"response": [check_httpx]}, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no output)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def environment() -> Iterator[dict[str, str]]:
    """A migrated database of its own (a unique name, dropped afterwards) and the env `crm` runs with."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        _unavailable("Redis", error)
    try:
        with scratch_database(DATABASE_URL, f"system_{worker}") as database_url:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PROMETHEUS_", "PYTEST_", "FIREBASE_AUTH"))}
            env.update({
                "DATABASE_URL": database_url,
                "REDIS_URL": REDIS_URL,
                "CRM_ENV": "test",
                "CURSOR_SECRET": "x",
                "ACCESS_LOG": "true",
            })
            _crm(env, "migrate")
            yield env
    except OperationalError as error:
        _unavailable("MariaDB/MySQL", error)


def _crm(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(CRM), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"crm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def workspace(environment: dict[str, str]) -> dict[str, str]:
    made = json.loads(_crm(environment, "workspace", "create", "--name", "S", "--owner-email", "s@example.com"))
    assert {"workspace_id", "api_key"} <= set(made)
    return made  # type: ignore[no-any-return]


def start_server(env: dict[str, str], directory: Path, *, workers: int = 2, threads: int = 4) -> Server:
    port = _free_port()
    metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=directory))
    log = directory / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CRM), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
             "--threads", str(threads)],
            # our own metrics dir, so the test can see which worker process counted what
            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, metrics_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"crm serve exited with {process.returncode}:\n{server.output()}")
        # every worker must be up: a worker stopped while still importing the app is not
        # graceful (granian waits for it, then kills it), and would muddle the stop test
        started = server.output().count("Started worker-")
        try:
            if started >= workers and httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"crm serve did not start {workers} workers and answer /health within 30 s:\n{server.output()}")


@pytest.fixture(scope="module")
def server(environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(environment, tmp_path_factory.mktemp("serve"))
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _server_output_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Printed output is shown only for failing tests: print what the server wrote meanwhile."""
    servers = {name: request.getfixturevalue(name) for name in ("server", "stopping_server")
               if name in request.fixturenames}
    yield
    for name, running in servers.items():
        print(f"---- {name} output ----\n{running.output()}")


@pytest.fixture
def auth(workspace: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {workspace['api_key']}"}


# ---- the HTTP path ---------------------------------------------------------------------------------
def test_health_and_ready(server: Server) -> None:
    with server.client() as client:
        health = client.get("/health")
        ready = client.get("/ready")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": True, "redis": True}}


def test_a_contact_round_trip(server: Server, auth: dict[str, str]) -> None:
    with server.client(headers=auth) as client:
        created = client.post("/v1/contacts", json={"email": " Round.Trip@Example.com ", "first_name": "Round"})
        assert created.status_code == 201, created.text
        record = created.json()
        assert record["email"] == "round.trip@example.com"
        assert created.headers["Location"] == f"/v1/contacts/{record['id']}"

        fetched = client.get(f"/v1/contacts/{record['id']}")
        assert fetched.status_code == 200 and fetched.json() == record
        assert fetched.headers["ETag"] == '"v1"' == created.headers["ETag"]
        assert fetched.headers["Content-Type"] == "application/json"

        unchanged = client.get(f"/v1/contacts/{record['id']}", headers={"If-None-Match": '"v1"'})
        assert unchanged.status_code == 304 and unchanged.content == b""


def test_unknown_path_is_a_404_problem(server: Server, auth: dict[str, str]) -> None:
    with server.client(headers=auth) as client:
        missing = client.get("/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    problem = missing.json()
    assert problem["status"] == 404 and problem["instance"] == missing.headers["X-Request-Id"]


def test_a_body_over_one_mebibyte_is_refused_with_413(server: Server, auth: dict[str, str]) -> None:
    body = b'{"first_name": "' + b"x" * (1024 * 1024) + b'"}'
    with server.client(headers={**auth, "Content-Type": "application/json"}) as client:
        too_large = client.post("/v1/contacts", content=body)
        # without Content-Length (chunked) the adapter counts what it reads
        chunked = client.post("/v1/contacts", content=iter([body[:600_000], body[600_000:]]))
        just_fits = client.post("/v1/contacts", content=b'{"first_name": "' + b"x" * 100 + b'"}')
    for reply in (too_large, chunked):
        assert reply.status_code == 413, reply.text
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert reply.json()["status"] == 413
    assert just_fits.status_code == 201


def test_headers_over_16_kib_reach_the_app_and_are_refused_with_431(server: Server, auth: dict[str, str]) -> None:
    # GIVEN granian, which reads far more header bytes than that: the app itself answers, as problem+json
    padding = {f"X-Padding-{n}": "p" * 1000 for n in range(20)}
    with server.client(headers={**auth, "Content-Type": "application/json"}) as client:
        before = client.get("/v1/contacts?limit=200").json()["data"]
        refused = client.post("/v1/contacts", content=b'{"first_name": "Padded"}', headers=padding)
        # ... on a connection that stays usable, and nothing was created
        after = client.get("/v1/contacts?limit=200")
    assert refused.status_code == 431, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:crm:problem:headers-too-large"
    assert after.status_code == 200 and after.json()["data"] == before


def test_request_id_is_generated_or_taken_from_the_trace_header(server: Server) -> None:
    with server.client() as client:
        generated = client.get("/health")
        trace = "Root=1-67891233-abcdef012345678912345678;Sampled=1"
        traced = client.get("/health", headers={"X-Amzn-Trace-Id": trace})
        other = client.get("/health")
    assert len(generated.headers["X-Request-Id"]) == 26
    assert other.headers["X-Request-Id"] != generated.headers["X-Request-Id"]
    assert traced.headers["X-Request-Id"] == "1-67891233-abcdef012345678912345678"


def _route_count(exposition: str, route: str, status: str = "200") -> float:
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != "crm_http_requests":
            continue
        for sample in family.samples:
            if (sample.name == "crm_http_requests_total" and sample.labels.get("route") == route
                    and sample.labels.get("status") == status):
                total += sample.value
    return total


def _per_process_counts(metrics_dir: Path, route: str) -> dict[str, float]:
    """Each worker writes counter_<pid>.db; read each file alone to see what that process counted."""
    from prometheus_client import generate_latest

    counts: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            Path(alone, path.name).write_bytes(path.read_bytes())
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            counts[path.stem.removeprefix("counter_")] = _route_count(generate_latest(registry).decode(), route)
    return counts


def test_metrics_are_summed_over_worker_processes(server: Server, auth: dict[str, str]) -> None:
    route = "/v1/contacts"
    with server.client() as client:
        before = _route_count(client.get("/metrics").text, route)

    # WHEN 40 requests arrive, each on a new connection (so the kernel spreads them over the workers)
    for _ in range(40):
        with server.client(headers=auth) as client:
            assert client.get("/v1/contacts?limit=1").status_code == 200

    # THEN /metrics (answered by whichever worker) counts all of them
    with server.client() as client:
        exposition = client.get("/metrics")
    assert exposition.status_code == 200
    assert exposition.headers["Content-Type"].startswith("text/plain")
    assert _route_count(exposition.text, route) - before >= 40
    assert "crm_http_request_duration_seconds_bucket" in exposition.text
    # ... and both worker processes served some of them
    per_process = _per_process_counts(server.metrics_dir, route)
    assert len([n for n in per_process.values() if n > 0]) >= 2, per_process
    assert sum(per_process.values()) == _route_count(exposition.text, route)


def test_rate_limit_counts_are_shared_by_the_workers(server: Server, auth: dict[str, str]) -> None:
    remaining = []
    for _ in range(20):
        with server.client(headers=auth) as client:  # new connections: both workers answer
            remaining.append(int(client.get("/v1/contacts?limit=1").headers["RateLimit-Remaining"]))
    # one counter in Redis: every answer saw a different, decreasing count
    assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == 20


# ---- graceful stop ---------------------------------------------------------------------------------
@pytest.fixture
def stopping_server(environment: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """A server of its own: the test stops it."""
    running = start_server(environment, tmp_path)
    yield running
    running.stop()


def _rows_being_written(database_url: str, prefixes: list[str]) -> dict[str, int]:
    """Rows of still-open transactions too (READ UNCOMMITTED): proof a request is being worked on."""
    engine = create_engine(database_url, isolation_level="READ UNCOMMITTED")
    try:
        with engine.connect() as connection:
            return {p: int(connection.execute(text("SELECT COUNT(*) FROM contacts WHERE email LIKE :p"),
                                              {"p": f"{p}%"}).scalar_one()) for p in prefixes}
    finally:
        engine.dispose()


def test_sigterm_lets_in_flight_requests_finish_then_exits(
    stopping_server: Server, environment: dict[str, str], auth: dict[str, str]
) -> None:
    server = stopping_server
    # GIVEN four slow requests (batch creates of 100 contacts, about a second each) ...
    prefixes = [f"stop-{n}-{time.time_ns()}-" for n in range(4)]
    results: dict[int, httpx.Response | BaseException] = {}

    def send(n: int) -> None:
        try:
            with server.client(headers=auth) as client:
                results[n] = client.post("/v1/contacts/batch/create", json={
                    "inputs": [{"email": f"{prefixes[n]}{i}@example.com"} for i in range(100)]})
        except BaseException as error:  # recorded, and asserted below
            results[n] = error

    senders = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in senders:
        thread.start()
    # ... each of them in flight: the app has started writing its rows, and not committed them yet
    deadline = time.monotonic() + 10
    while not all(_rows_being_written(environment["DATABASE_URL"], prefixes).values()):
        assert time.monotonic() < deadline, "the requests never reached the app"
        time.sleep(0.02)
    assert not results, "a request finished before the stop: make them slower"

    # WHEN the server is told to stop
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    exit_code = server.process.wait(timeout=STOP_DEADLINE_SECONDS)
    stop_seconds = time.monotonic() - stopped_at
    for thread in senders:
        thread.join(timeout=STOP_DEADLINE_SECONDS)

    # THEN every in-flight request was answered in full, and its rows committed
    print(f"stopped in {stop_seconds:.2f} s with exit code {exit_code}")
    for n in range(4):
        reply = results[n]
        assert isinstance(reply, httpx.Response), f"request {n} was cut off: {reply!r}"
        assert reply.status_code == 200, reply.text
        assert [r["status"] for r in reply.json()["results"]] == [201] * 100
    assert set(_rows_being_written(environment["DATABASE_URL"], prefixes).values()) == {100}
    # ... and the process exits cleanly (granian's main process returns normally: 0), within the deadline
    assert exit_code == 0
    assert stop_seconds < STOP_DEADLINE_SECONDS
    # ... after which new connections are refused
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/health", timeout=2)
