"""A keyed request whose `crm serve` is SIGKILLed while its COMMIT is on the wire takes effect exactly once.

The server reaches MariaDB through a FaultProxy that freezes at the moment the request sends the COMMIT of
the transaction holding its Idempotency-Key record; the server is then killed. Either the COMMIT still
reaches the database (a slow network: the request took effect, its answer never left) and the retry on a new
server replays it, or it is lost with the connection and the retry runs the request. Never twice.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from layers.db.idempotency import key_digest
from shared.ids import new_id
from tests.support.databases import scratch_database
from tests.support.faults import FaultProxy
from tests.system.test_serve import CRM, DATABASE_URL, REDIS_URL, REPO, Server, start_server

pytestmark = pytest.mark.system

DEADLINE_SECONDS = 60


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the system tests", pytrace=False)
    pytest.skip(f"{message}; start it or set TEST_DATABASE_URL / TEST_SYSTEM_REDIS_URL")


def _crm(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(CRM), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"crm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = threading.Event()
    timer = threading.Timer(DEADLINE_SECONDS, deadline.set)
    timer.start()
    try:
        while not condition():
            if deadline.wait(0.1):
                pytest.fail(f"{what}: not within {DEADLINE_SECONDS} s")
    finally:
        timer.cancel()


class Stack:
    """A migrated database of its own with a workspace, and the env that points `crm serve` at it via a proxy."""

    def __init__(self, database_url: str, env: dict[str, str], workspace: dict[str, str]) -> None:
        self.database_url = database_url
        self.env = env
        self.workspace = workspace
        self.direct: Engine = create_engine(database_url)
        self.redis = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=2)

    def count(self, sql: str, **params: Any) -> int:
        with self.direct.connect() as connection:
            return int(connection.execute(text(sql), params).scalar_one())

    def server_connections(self) -> int:
        """Connections to this database other than the test's own: the killed server's, until MariaDB drops them."""
        return self.count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                          "WHERE DB = :db AND ID <> CONNECTION_ID()", db=make_url(self.database_url).database)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        _unavailable("Redis", error)
    try:
        with scratch_database(DATABASE_URL, f"crash_{worker}") as database_url:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PROMETHEUS_", "PYTEST_", "FIREBASE_AUTH"))}
            env.update({"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "CRM_ENV": "test", "CURSOR_SECRET": "x",
                        "ACCESS_LOG": "true"})
            _crm(env, "migrate")
            workspace = json.loads(_crm(env, "workspace", "create", "--name", "C", "--owner-email", "c@example.com"))
            made = Stack(database_url, env, workspace)
            yield made
            made.direct.dispose()
            made.redis.close()
    except OperationalError as error:
        _unavailable("MariaDB/MySQL", error)


def _through(proxy: FaultProxy, database_url: str) -> str:
    return make_url(database_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.parametrize("commit_arrives", [True, False], ids=["commit-arrives-after-the-kill", "commit-lost"])
def test_a_keyed_request_killed_at_its_commit_takes_effect_once(
        stack: Stack, tmp_path: Path, commit_arrives: bool) -> None:
    database = make_url(stack.database_url)
    proxy = FaultProxy(database.host or "127.0.0.1", database.port or 3306)
    env = {**stack.env, "DATABASE_URL": _through(proxy, stack.database_url)}
    key, first_name = f"key-{new_id()}", f"Killed {new_id()}"
    headers = {"Authorization": f"Bearer {stack.workspace['api_key']}", "Idempotency-Key": key}
    servers: list[Server] = []
    try:
        # GIVEN a keyed create in flight, its COMMIT (with the key's record) held on the wire
        servers.append(start_server(env, tmp_path, workers=1, threads=2))
        proxy.freeze_before(b"\x03COMMIT", after=b"INSERT INTO idempotency_records")
        answered: list[object] = []

        def send() -> None:
            try:
                answered.append(httpx.post(f"{servers[0].base_url}/v1/contacts", json={"first_name": first_name},
                                           headers=headers, timeout=DEADLINE_SECONDS))
            except httpx.HTTPError as error:
                answered.append(error)

        sender = threading.Thread(target=send)
        sender.start()
        assert proxy.triggered.wait(DEADLINE_SECONDS), "the request never sent its COMMIT"

        # WHEN its server is SIGKILLed, and the COMMIT then reaches the database (or is lost with the connection)
        os.killpg(servers[0].process.pid, signal.SIGKILL)
        servers[0].process.wait(timeout=DEADLINE_SECONDS)
        sender.join(timeout=DEADLINE_SECONDS)
        assert answered and isinstance(answered[0], httpx.HTTPError), "the killed server answered"
        if not commit_arrives:
            proxy.cut()
        proxy.resume()
        _wait_for(lambda: stack.server_connections() == 0, "MariaDB still has the killed server's connections")
        record = "SELECT COUNT(*) FROM idempotency_records WHERE owner = :w AND key_digest = :d"
        assert stack.count(record, w=stack.workspace["workspace_id"], d=key_digest(key)) == int(commit_arrives)

        # ... and the client retries on a new server: first while the dead process's lease lives (≤ 30 s), then
        # after it expired (the test removes it rather than wait)
        servers.append(start_server(env, tmp_path, workers=1, threads=2))
        lease = f"idem:{stack.workspace['workspace_id']}:{key}"
        assert 0 < stack.redis.ttl(lease) <= 30
        with servers[1].client(headers=headers) as client:
            during = client.post("/v1/contacts", json={"first_name": first_name})
            stack.redis.delete(lease)
            retry = client.post("/v1/contacts", json={"first_name": first_name})

        # THEN the retry waited for the lease, then replayed the committed request or ran the lost one: once
        assert during.status_code == 409 and during.headers.get("Retry-After"), during.text
        assert retry.status_code == 201, retry.text
        assert retry.headers.get("Idempotent-Replayed") == ("true" if commit_arrives else None)
        contacts = "SELECT COUNT(*) FROM contacts WHERE first_name = :n"
        events = ("SELECT COUNT(*) FROM outbox_events e JOIN contacts c ON c.id = e.record_id "
                  "WHERE c.first_name = :n AND e.event_type = 'contact.created'")
        assert (stack.count(contacts, n=first_name), stack.count(events, n=first_name)) == (1, 1)
    finally:
        for running in servers:
            running.stop()
            print(f"---- crm serve output ----\n{running.output()}")
        proxy.close()
