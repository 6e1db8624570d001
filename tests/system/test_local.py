"""`crm local` — the README's first command — as a real process: the whole system on embedded defaults
(SQLite, the in-process Redis stand-in, moto's server, the worker tier as a child process), and a clean
exit on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.contract import check_httpx
from tests.system.test_serve import CRM, _free_port

pytestmark = pytest.mark.system


def test_crm_local_runs_api_and_worker_tier_and_stops_on_sigterm(tmp_path: Path) -> None:
    # GIVEN `crm local` started in an empty directory with no configuration
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "DATABASE_URL", "REDIS_URL", "CRM_ENV", "PROMETHEUS_", "PYTEST_",
                                "JOBS_", "WEBHOOK_"))}
    log = tmp_path / "local.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(CRM), "local", "--port", str(port)], cwd=tmp_path, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        key = json.loads((tmp_path / ".crm-local" / "workspace.json").read_text())["api_key"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"},
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
            assert done.get("status") == "completed", log.read_text(errors="replace")
            events = client.get("/v1/events", params={"types": "contact.*"}).json()["data"]
            assert [e["type"] for e in events] == ["contact.created"]
        downloaded = httpx.get(str(done["download_url"]), timeout=10).text
        assert json.loads(downloaded.splitlines()[0])["email"] == "ada@example.com"
    finally:
        # WHEN it is stopped the way a terminal or a container stops it
        children = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    # THEN it exits, taking its worker process (and the HTTP server's) with it
    assert code == 0, log.read_text(errors="replace")
    assert any("worker" in command for command in children.values()), children
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [command for pid, command in children.items() if _alive(pid)] == []


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
