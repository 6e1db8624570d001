"""`crm local` — the README's first command — as a real process: the whole system on embedded defaults
(SQLite, the in-process Redis stand-in, moto's server, the API server and worker tier as child processes),
and a quick, clean exit on SIGTERM and on Ctrl-C (SIGINT to its whole process group) that leaves no process
behind."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from tests.support.contract import check_httpx
from tests.system.test_serve import CRM, REPO, _free_port

pytestmark = pytest.mark.system


STOP_BOUND_SECONDS = 10  # a failure bound: `crm local` itself gives its children 4 s, then kills them


@dataclass
class Local:
    process: subprocess.Popen[bytes]
    directory: Path
    port: int
    log: Path
    env: dict[str, str]
    realtime_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def api_key(self) -> str:
        return str(json.loads((self.directory / ".crm-local" / "workspace.json").read_text())["api_key"])

    def stop(self, signum: int, *, group: bool) -> tuple[int, float, dict[int, str]]:
        """Signal it (its whole process group, as a terminal's Ctrl-C does, or itself alone); its exit
        code, how long it took, and every process it had started."""
        descendants = _descendants(self.process.pid)
        sent_at = time.monotonic()
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(STOP_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill(descendants)
            pytest.fail(f"crm local did not stop within {STOP_BOUND_SECONDS} s:\n{self.output()}")
        return code, time.monotonic() - sent_at, descendants

    def kill(self, descendants: dict[int, str] | None = None) -> None:
        for pid in [self.process.pid, *(descendants or _descendants(self.process.pid))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    """`crm local` started in an empty directory with no configuration, on a free port, answering /ready."""
    port, realtime_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "DATABASE_URL", "REDIS_URL", "CRM_ENV", "PROMETHEUS_", "PYTEST_",
                                "JOBS_", "WEBHOOK_", "IMPORT_", "WORKER_"))}
    log = tmp_path / "local.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(CRM), "local", "--port", str(port), "--realtime-port", str(realtime_port)],
                                   cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Local(process, tmp_path, port, log, env, realtime_port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, running.output()
            assert time.monotonic() < deadline, f"crm local never became ready:\n{running.output()}"
            try:
                if (httpx.get(f"{running.base_url}/ready", timeout=1).status_code == 200
                        and httpx.get(f"http://127.0.0.1:{realtime_port}/health", timeout=1).status_code == 200):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            running.kill()


def test_crm_local_runs_api_and_worker_tier_and_stops_on_sigterm(local: Local) -> None:
    with httpx.Client(base_url=local.base_url, headers={"Authorization": f"Bearer {local.api_key()}"},
                      timeout=10, event_hooks={"response": [check_httpx]}) as client:
        # WHEN a contact is created and an export of contacts is asked for
        created = client.post("/v1/contacts", json={"first_name": "Ada", "email": "ada@example.com"})
        assert created.status_code == 201, created.text
        export = client.post("/v1/exports", json={"object_type": "contacts", "format": "jsonl"}).json()

        # THEN the worker tier relays the event and runs the export, whose link downloads the contact
        deadline = time.monotonic() + 30
        done: dict[str, object] = {}
        while time.monotonic() < deadline and done.get("status") != "completed":
            done = client.get(f"/v1/exports/{export['id']}").json()
            time.sleep(0.2)
        assert done.get("status") == "completed", local.output()
        events = client.get("/v1/events", params={"types": "contact.*"}).json()["data"]
        assert [e["type"] for e in events] == ["contact.created"]
    downloaded = httpx.get(str(done["download_url"]), timeout=10).text
    assert json.loads(downloaded.splitlines()[0])["email"] == "ada@example.com"

    # AND a sample event for one record runs on it with `crm invoke --id`, with crm local's own key
    sample = REPO / "events" / "contacts_get_by_id.json"
    invoked = subprocess.run([str(CRM), "invoke", "contacts_get", "--event", str(sample), "--id", created.json()["id"]],
                             cwd=local.directory, env=local.env, capture_output=True, timeout=60, check=False)
    assert invoked.returncode == 0, invoked.stderr.decode(errors="replace")
    assert json.loads(json.loads(invoked.stdout)["body"])["email"] == "ada@example.com"

    # AND `crm dlq list` from another shell (no AWS settings) finds crm local's queues, with nothing in them
    listed = subprocess.run([str(CRM), "dlq", "list"], cwd=local.directory, env=local.env, capture_output=True,
                            timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr.decode(errors="replace")
    assert listed.stdout == b"" and b"aws.json" in listed.stderr

    # WHEN it is stopped the way a container stops it
    code, seconds, descendants = local.stop(signal.SIGTERM, group=False)

    # THEN it exits cleanly, taking its worker and server processes (and the server's own) with it
    print(f"crm local stopped on SIGTERM in {seconds:.2f} s")
    assert code == 0, local.output()
    assert any("worker" in command for command in descendants.values()), descendants
    assert any("serve" in command for command in descendants.values()), descendants
    assert [command for pid, command in descendants.items() if _alive(pid)] == []
    assert not (local.directory / ".crm-local" / "aws.json").exists()  # its AWS stand-in went with it


def test_crm_local_pushes_live_changes_through_its_realtime_tier(local: Local) -> None:
    # GIVEN a Socket.io client connected to crm local's real-time tier with the local API key
    async def listen_while_creating() -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        arrived = asyncio.Event()
        sio = socketio.AsyncClient(reconnection=False)

        async def on_event(event: dict[str, Any]) -> None:
            received.append(event)
            arrived.set()

        sio.on("event", on_event)
        await sio.connect(f"http://127.0.0.1:{local.realtime_port}", auth={"token": local.api_key()},
                          transports=["websocket"], wait_timeout=30)
        try:
            # WHEN a contact is created through the API
            async with httpx.AsyncClient(base_url=local.base_url, timeout=10,
                                         headers={"Authorization": f"Bearer {local.api_key()}"}) as client:
                created = await client.post("/v1/contacts", json={"first_name": "Live", "email": "live@example.com"})
                assert created.status_code == 201, created.text
            await asyncio.wait_for(arrived.wait(), timeout=30)
        finally:
            await sio.disconnect()
        return received

    received = asyncio.run(listen_while_creating())

    # THEN the client gets the event log's event for it, relayed through the local Redis stand-in
    assert [(e["type"], e["data"]["object"]["email"]) for e in received] == [("contact.created", "live@example.com")]
    assert received[0]["sequence"] >= 1


def test_ctrl_c_stops_crm_local_quickly_and_cleanly(local: Local) -> None:
    # GIVEN crm local that has answered an authenticated request (its server and worker busy with nothing)
    reply = httpx.get(f"{local.base_url}/v1/contacts", headers={"Authorization": f"Bearer {local.api_key()}"})
    assert reply.status_code == 200, reply.text

    # WHEN Ctrl-C is pressed in its terminal: SIGINT to its whole process group
    code, seconds, descendants = local.stop(signal.SIGINT, group=True)

    # THEN it exits with 0 (within the bound `stop` asserts), no process it started is left, and none
    # had to be killed
    print(f"crm local stopped on Ctrl-C in {seconds:.2f} s")
    assert code == 0, local.output()
    assert len(descendants) >= 3, descendants  # worker, granian's main and its worker process
    assert [command for pid, command in descendants.items() if _alive(pid)] == []
    assert "(cleanly)" in local.output(), local.output()


def _descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (children, their children, ...) and its command line."""
    found: dict[int, str] = {}
    parents = [pid]
    while parents:
        children = _children(parents.pop())
        found.update(children)
        parents.extend(children)
    return found


def _children(pid: int) -> dict[int, str]:
    """The direct children of a process and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie left for a non-reaping init counts as gone)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
