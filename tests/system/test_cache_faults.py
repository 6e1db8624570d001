"""Real `crm serve` processes under load while their Redis is paused (SIGSTOP: its old entries survive):
once a write has answered, no GET that starts afterwards — on any worker process of the server that
took the write, or on another server that took no traffic meanwhile — returns the value from before it."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.private_redis import PrivateRedis
from tests.system.test_serve import (  # noqa: F401 - the API tier's fixtures
    Server,
    _crm,
    environment,
    start_server,
)

pytestmark = pytest.mark.system
READS_AFTER_THE_WRITE = 300


@dataclass(frozen=True)
class Read:
    started: float
    title: str


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.close()


def test_no_stale_read_after_a_write_acknowledged_while_redis_was_paused(
    environment: dict[str, str], private_redis: PrivateRedis, tmp_path: Path  # noqa: F811
) -> None:
    env = {**environment, "REDIS_URL": private_redis.url}
    workspace = json.loads(_crm(env, "workspace", "create", "--name", "C", "--owner-email", "c@example.com"))
    auth = {"Authorization": f"Bearer {workspace['api_key']}"}
    busy = start_server(env, tmp_path, workers=2, threads=4)
    idle = start_server(env, tmp_path, workers=1, threads=2)
    try:
        # GIVEN a contact that both servers have read (so both have it cached, or hit it)
        with busy.client(headers=auth) as client:
            created = client.post("/v1/contacts", json={"first_name": "Ada", "job_title": "Engineer"}).json()
        path = f"/v1/contacts/{created['id']}"
        for server in (busy, idle):
            with server.client(headers=auth) as client:
                for _ in range(20):
                    assert client.get(path).json()["job_title"] == "Engineer"

        # AND readers hammering the busy server
        reads: list[Read] = []
        stop = threading.Event()

        def reader() -> None:
            with busy.client(headers=auth) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    reply = client.get(path)
                    assert reply.status_code == 200, reply.text
                    reads.append(Read(started, reply.json()["job_title"]))

        threads = [threading.Thread(target=reader) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            # WHEN Redis is paused, the contact is changed, and Redis resumes with its old entries
            private_redis.pause()
            try:
                with busy.client(headers=auth) as client:
                    patched = client.patch(path, json={"job_title": "Analyst"})
                answered = time.monotonic()
            finally:
                private_redis.resume()
            assert patched.status_code == 200, patched.text
            _wait_for(lambda: sum(r.started > answered for r in reads) >= READS_AFTER_THE_WRITE, reads)
        finally:
            stop.set()
            for thread in threads:
                thread.join()

        # THEN every read that started after the write answered shows the change (the entry from before
        # it is still in Redis: a paused server keeps what it had) ...
        after = [r.title for r in reads if r.started > answered]
        assert len(after) >= READS_AFTER_THE_WRITE
        assert set(after) == {"Analyst"}, f"{after.count('Engineer')} stale reads of {len(after)}"
        # ... AND the server that took no traffic meanwhile does not serve the old entry either
        with idle.client(headers=auth) as client:
            assert [client.get(path).json()["job_title"] for _ in range(20)] == ["Analyst"] * 20
    finally:
        busy.stop()
        idle.stop()


def _wait_for(condition: object, reads: list[Read]) -> None:
    deadline = time.monotonic() + 120
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"only {len(reads)} reads in 120 s")
        time.sleep(0.05)
