"""The real-time tier as real processes: two `crm realtime` sharing Redis, `crm serve`, and `crm worker`
(whose relay announces committed events), on MariaDB, Redis and moto's SQS — driven by python-socketio's
client over websocket and long-polling, as the JS client v4 speaks the same protocol (v5)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from tests.support.firebase_keys import FirebaseTestIssuer
from tests.system.test_serve import CRM, REPO, Server, _crm, _free_port, environment, start_server  # noqa: F401
from tests.system.test_worker_tier import moto_env, start_worker  # noqa: F401

pytestmark = pytest.mark.system
WAIT = 20.0  # seconds a condition may take before the test fails (each is met in well under one)


# ---- processes -------------------------------------------------------------------------------------------
@dataclass
class Realtime:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no output)"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if sig == signal.SIGKILL:  # the whole process group: granian's worker process too, as a crash would
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_realtime(env: dict[str, str], directory: Path) -> Realtime:
    port = _free_port()
    log = directory / f"realtime-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CRM), "realtime", "--host", "127.0.0.1", "--port", str(port)],
            env={**env, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="rt-metrics-", dir=directory)},
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Realtime(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"crm realtime exited with {process.returncode}:\n{running.output()}")
        try:
            started = "Started worker-" in running.output()
            if started and httpx.get(f"{running.url}/health", timeout=1).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    running.stop()
    pytest.fail(f"crm realtime did not answer /health within 30 s:\n{running.output()}")


@pytest.fixture(scope="module")
def issuer() -> Iterator[FirebaseTestIssuer]:
    with FirebaseTestIssuer(project_id="crm-rt-test") as made:
        yield made


@pytest.fixture(scope="module")
def rt_env(moto_env: dict[str, str], issuer: FirebaseTestIssuer) -> dict[str, str]:  # noqa: F811
    return {**moto_env, "REALTIME_CHANNEL": f"test:realtime:{uuid.uuid4().hex}", "REALTIME_RECHECK_SECONDS": "1",
            "REALTIME_HEAL_SECONDS": "0.5", "REALTIME_PRESENCE_TTL_SECONDS": "3",
            "FIREBASE_PROJECT_ID": issuer.project_id, "FIREBASE_CERTS_URL": issuer.certs_url, "ACCESS_LOG": "false"}


@pytest.fixture(scope="module")
def tier(rt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The api tier, a worker with its relay, and two realtime processes."""
    directory = tmp_path_factory.mktemp("realtime")
    api = start_server(rt_env, directory, workers=1, threads=4)
    worker = start_worker(rt_env, directory / "worker.log")
    first, second = start_realtime(rt_env, directory), start_realtime(rt_env, directory)
    yield {"api": api, "worker": worker, "a": first, "b": second, "dir": directory, "env": rt_env}
    for process in (first, second):
        process.stop()
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    api.stop()


@dataclass
class Workspace:
    workspace_id: str
    api_key: str
    owner_email: str
    api: Server

    def http(self, method: str, path: str, body: Any = None, *, key: str | None = None) -> httpx.Response:
        with httpx.Client(base_url=self.api.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {key or self.api_key}"}) as client:
            return client.request(method, path, json=body)

    def contact(self, name: str, **fields: Any) -> str:
        reply = self.http("POST", "/v1/contacts", {"first_name": name, **fields})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])


def _workspace(tier: dict[str, Any], name: str) -> Workspace:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    made = json.loads(_crm(tier["env"], "workspace", "create", "--name", name, "--owner-email", email))
    return Workspace(made["workspace_id"], made["api_key"], email, tier["api"])


@pytest.fixture(scope="module")
def shared_workspace(tier: dict[str, Any]) -> Workspace:
    return _workspace(tier, "Live")


# ---- the client ------------------------------------------------------------------------------------------
class Listener:
    """A python-socketio client that records what it gets."""

    def __init__(self, url: str, auth: dict[str, Any] | None, transports: tuple[str, ...] = ("websocket",), *,
                 headers: dict[str, str] | None = None) -> None:
        self.url, self.auth, self.transports, self.headers = url, auth, list(transports), headers or {}
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.resyncs: list[dict[str, Any]] = []
        self.presence: list[dict[str, Any]] = []
        self.refusals: list[Any] = []
        self.gone = False
        self.client.on("event", self.events.append)
        self.client.on("error", self.errors.append)
        self.client.on("resync_required", self.resyncs.append)
        self.client.on("presence", self.presence.append)
        self.client.on("connect_error", self.refusals.append)
        self.client.on("disconnect", self._gone)

    def _gone(self, *args: Any) -> None:
        self.gone = True

    async def connect(self) -> Listener:
        await self.client.connect(self.url, auth=self.auth, transports=self.transports, headers=self.headers,
                                  wait_timeout=10)
        return self

    async def refused(self) -> dict[str, Any]:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await self.client.connect(self.url, auth=self.auth, transports=self.transports, wait_timeout=10)
        await self.client.eio.disconnect(abort=True)  # no waiting for a long poll (see `close`)
        assert self.refusals, "no connect_error"
        refusal = self.refusals[-1]
        assert isinstance(refusal, dict) and "data" in refusal, refusal
        return refusal["data"]  # type: ignore[no-any-return]

    def sequences(self) -> list[int]:
        return [int(e["sequence"]) for e in self.events]

    def records(self) -> list[str]:
        return [str(e["record_id"]) for e in self.events]

    async def close(self) -> None:
        if not self.client.connected:
            return
        if self.transports == ["polling"]:
            # python-socketio's client waits for its pending long poll to end (up to the 25 s ping interval)
            # before a disconnect returns; the JS client aborts it. Leave without waiting: the server drops
            # the session at its ping timeout.
            await self.client.eio.disconnect(abort=True)
            return
        await self.client.disconnect()


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _consecutive(sequences: list[int]) -> bool:
    return sequences == list(range(sequences[0], sequences[0] + len(sequences))) if sequences else True


# ---- connecting ------------------------------------------------------------------------------------------
def test_a_key_hears_a_write_on_both_processes_over_websocket_and_long_polling(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    async def scenario() -> None:
        # GIVEN a client on each process over each transport
        auth = {"token": shared_workspace.api_key}
        listeners = [await Listener(tier[p].url, auth, (t,)).connect() for p in "ab" for t in ("websocket", "polling")]

        # WHEN a contact is created through the API
        contact = await asyncio.to_thread(shared_workspace.contact, "Live")

        # THEN each client gets its contact.created, with the body the event log serves
        for listener in listeners:
            await until(lambda listener=listener: contact in listener.records(), f"the event on {listener.transports}")
        event = next(e for e in listeners[0].events if e["record_id"] == contact)
        log = shared_workspace.http("GET", "/v1/events", None).json()
        assert event["type"] == "contact.created" and event["workspace_id"] == shared_workspace.workspace_id
        assert any(e == event for e in log["data"]) or event["sequence"] > log["data"][-1]["sequence"]
        for listener in listeners:
            await listener.close()

    asyncio.run(scenario())


def test_bad_credentials_are_refused_with_the_rest_problem_shape(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    async def scenario() -> None:
        url = tier["a"].url
        # WHEN clients connect without auth, with an unknown key, a bad token, another workspace, a bad `after`
        nothing = await Listener(url, None).refused()
        # (over websocket: python-socketio's client sits out a long poll after a refusal over polling)
        unknown = await Listener(url, {"token": "crm_" + "x" * 40}).refused()
        garbage = await Listener(url, {"token": "not-a-jwt"}).refused()
        elsewhere = await Listener(url, {"token": shared_workspace.api_key,
                                         "workspace_id": "01J9Z8Q4V6W2X3Y5Z7A9B1C3D5"}).refused()
        bad_after = await Listener(url, {"token": shared_workspace.api_key, "after": "not-a-cursor"}).refused()

        # THEN each gets connect_error with a problem: 401, 401, 401, 403, 422
        for refusal, status in ((nothing, 401), (unknown, 401), (garbage, 401), (elsewhere, 403), (bad_after, 422)):
            assert refusal["status"] == status, refusal
            assert {"type", "title", "status", "detail"} <= set(refusal)
            assert refusal["type"].startswith("urn:crm:problem:")

    asyncio.run(scenario())


# ---- subscriptions ---------------------------------------------------------------------------------------
def test_subscriptions_narrow_what_a_client_gets_and_invalid_ones_are_refused(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    async def scenario() -> None:
        # GIVEN a client, and a contact it will follow by id, created once the client is connected (a creation
        # relayed before the connection existed is not live for it: it would wait for the event forever)
        listener = await Listener(tier["b"].url, {"token": shared_workspace.api_key}).connect()
        followed = await asyncio.to_thread(shared_workspace.contact, "Followed")
        await until(lambda: followed in listener.records(), "the followed contact's creation (everything, so far)")
        listener.events.clear()
        call = listener.client.call

        # WHEN it subscribes to company events, to one contact, and to contacts matching a filter
        companies = await call("subscribe", {"id": "companies", "event_types": ["company.*"]}, timeout=10)
        one = await call("subscribe", {"id": "one", "records": [f"contacts/{followed}"]}, timeout=10)
        vip = await call("subscribe", {"id": "vip", "event_types": ["contact.*"], "filter": [
            {"filters": [{"property": "last_name", "operator": "EQ", "value": "Vip"}]}]}, timeout=10)
        # ... and sends invalid ones
        plural = await call("subscribe", {"event_types": ["contacts.*"]}, timeout=10)
        unfocused = await call("subscribe", {"event_types": ["*"], "filter": [
            {"filters": [{"property": "last_name", "operator": "EQ", "value": "x"}]}]}, timeout=10)
        unknown_field = await call("subscribe", {"event_types": ["contact.*"], "filter": [
            {"filters": [{"property": "shoe_size", "operator": "EQ", "value": 1}]}]}, timeout=10)
        not_a_record = await call("subscribe", {"records": ["pipelines/01J9Z8Q4V6W2X3Y5Z7A9B1C3D5"]}, timeout=10)
        missing = await call("unsubscribe", {"id": "nope"}, timeout=10)

        # THEN the valid ones are acknowledged with what was applied (the default went away with the first)
        assert "subscription" in companies, companies
        assert companies["subscription"] == {"id": "companies", "event_types": ["company.*"]}
        assert one["subscription"]["records"] == [f"contacts/{followed}"]
        assert [s["id"] for s in vip["subscriptions"]] == ["companies", "one", "vip"]
        # ... and the invalid ones get a problem each
        assert [p["status"] for p in (plural, unfocused, unknown_field, not_a_record, missing)] == [
            422, 422, 422, 422, 404]
        assert "contact.*" in plural["detail"]
        assert unknown_field["errors"][0]["field"].startswith("filter")

        # WHEN writes happen: another contact, a company, the followed contact, a VIP, then a company marker
        other = await asyncio.to_thread(shared_workspace.contact, "Other")
        company = shared_workspace.http("POST", "/v1/companies", {"name": "Sub Co"}).json()["id"]
        shared_workspace.http("PATCH", f"/v1/contacts/{followed}", {"last_name": "Changed"})
        vip_id = await asyncio.to_thread(shared_workspace.contact, "Very", last_name="Vip")
        marker = shared_workspace.http("POST", "/v1/companies", {"name": "Marker"}).json()["id"]
        await until(lambda: marker in listener.records(), "the marker")

        # THEN it got exactly what its subscriptions take, in order
        got = [(e["type"], e["record_id"]) for e in listener.events]
        assert got == [("company.created", company), ("contact.updated", followed), ("contact.created", vip_id),
                       ("company.created", marker)]
        assert other not in listener.records() and _consecutive(sorted(listener.sequences())) is not None
        assert listener.sequences() == sorted(listener.sequences())

        # WHEN it unsubscribes from everything
        cleared = await call("unsubscribe", None, timeout=10)
        assert cleared == {"subscriptions": []}
        await listener.close()

    asyncio.run(scenario())


# ---- resume ----------------------------------------------------------------------------------------------
def test_a_client_resumes_on_the_other_process_with_nothing_missed_and_nothing_doubled(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    async def scenario() -> None:
        # GIVEN a client that saw an event, then went away
        first = await Listener(tier["a"].url, {"token": shared_workspace.api_key}).connect()
        seen = await asyncio.to_thread(shared_workspace.contact, "Seen")
        await until(lambda: seen in first.records(), "the first event")
        last = first.sequences()[-1]
        await first.close()

        # WHEN five contacts are written while it is away, and it comes back to the other process with `after`
        missed = [await asyncio.to_thread(shared_workspace.contact, f"Missed{i}") for i in range(5)]
        again = await Listener(tier["b"].url, {"token": shared_workspace.api_key, "after": last},
                               ("polling",)).connect()
        # ... and one more is written once it is back
        live = await asyncio.to_thread(shared_workspace.contact, "Live")
        await until(lambda: live in again.records(), "the live event after the resume")

        # THEN it got every event after `last` exactly once, in order: the five it missed, then the live one
        assert _consecutive(again.sequences()) and again.sequences()[0] == last + 1
        assert len(set(again.sequences())) == len(again.sequences())
        assert [r for r in again.records() if r in [*missed, live]] == [*missed, live]
        await again.close()

    asyncio.run(scenario())


def test_a_cursor_from_the_event_log_resumes_where_the_log_page_ended(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    async def scenario() -> None:
        # GIVEN the event log read to its end through REST
        cursor, more = None, True
        while more:
            page = shared_workspace.http("GET", f"/v1/events?limit=500{'&after=' + cursor if cursor else ''}").json()
            cursor, more = page["next_cursor"], page["has_more"]

        # WHEN a contact is written, then a client connects with that cursor
        after_read = await asyncio.to_thread(shared_workspace.contact, "AfterRead")
        listener = await Listener(tier["a"].url, {"token": shared_workspace.api_key, "after": cursor}).connect()

        # THEN it gets the contact's event first (from the log), nothing older
        await until(lambda: after_read in listener.records(), "the event after the cursor")
        assert listener.records()[0] == after_read
        await listener.close()

    asyncio.run(scenario())


def test_a_killed_process_clients_reconnect_to_the_other_and_resume_without_loss(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    async def scenario() -> None:
        # GIVEN a third process with clients over both transports, which have seen an event
        doomed = start_realtime(tier["env"], tier["dir"])
        auth = {"token": shared_workspace.api_key}
        clients = [await Listener(doomed.url, auth, (t,)).connect() for t in ("websocket", "polling")]
        before = await asyncio.to_thread(shared_workspace.contact, "Before")
        for client in clients:
            await until(lambda client=client: before in client.records(), "the first event")

        # WHEN the process is killed and writes go on
        doomed.stop(signal.SIGKILL)
        written = [await asyncio.to_thread(shared_workspace.contact, f"During{i}") for i in range(3)]
        for client in clients:
            await until(lambda client=client: client.gone, "the client to notice")

        # THEN each reconnects to another process with its last sequence and gets everything, once, in order
        for client in clients:
            again = await Listener(tier["b"].url, {**auth, "after": client.sequences()[-1]}, tuple(client.transports)
                                   ).connect()
            await until(lambda again=again: written[-1] in again.records(), "the events written meanwhile")
            combined = client.sequences() + again.sequences()
            assert _consecutive(combined) and len(set(combined)) == len(combined)
            assert [r for r in again.records() if r in written] == written
            await again.close()

    asyncio.run(scenario())


# ---- who may see what ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def restricted(tier: dict[str, Any], issuer: FirebaseTestIssuer) -> dict[str, Any]:
    """A workspace with record-level visibility on: its owner (a person), a member, their tokens."""
    workspace = _workspace(tier, "Restricted")
    assert workspace.http("PATCH", "/v1/workspace", {"restrict_member_visibility": True}).status_code == 200
    member_email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    invited = workspace.http("POST", "/v1/members", {"email": member_email, "role": "member"})
    assert invited.status_code == 201, invited.text
    member_token = issuer.mint(f"uid-{uuid.uuid4().hex}", email=member_email)
    owner_token = issuer.mint(f"uid-{uuid.uuid4().hex}", email=workspace.owner_email)
    owner_id = workspace.http("GET", "/v1/me", key=owner_token).json()["id"]
    return {"workspace": workspace, "member_id": invited.json()["user_id"], "member_token": member_token,
            "owner_id": owner_id, "owner_token": owner_token}


def test_the_visibility_matrix_follows_owner_changes(tier: dict[str, Any], restricted: dict[str, Any]) -> None:
    workspace: Workspace = restricted["workspace"]
    member_id, owner_id = restricted["member_id"], restricted["owner_id"]

    async def scenario() -> None:
        # GIVEN the member, the owner (a person, admin) and an API key listening
        person = {"workspace_id": workspace.workspace_id}
        member = await Listener(tier["a"].url, {**person, "token": restricted["member_token"]}).connect()
        owner = await Listener(tier["b"].url, {**person, "token": restricted["owner_token"]}, ("polling",)).connect()
        key = await Listener(tier["a"].url, {"token": workspace.api_key}).connect()

        # WHEN records are written: one the member owns, one the owner owns; then the owner's moves to the
        # member (into view), the member's moves to the owner (out of view) and changes again
        mine = await asyncio.to_thread(workspace.contact, "Mine", owner_id=member_id)
        theirs = await asyncio.to_thread(workspace.contact, "Theirs", owner_id=owner_id)
        workspace.http("PATCH", f"/v1/contacts/{theirs}", {"owner_id": member_id})
        workspace.http("PATCH", f"/v1/contacts/{mine}", {"owner_id": owner_id})
        workspace.http("PATCH", f"/v1/contacts/{mine}", {"last_name": "Hidden"})
        marker = await asyncio.to_thread(workspace.contact, "Marker", owner_id=member_id)
        for listener in (member, owner, key):
            await until(lambda listener=listener: marker in listener.records(), "the marker")

        # THEN the member got what it may see when each event was sent; the owner and the key got everything
        seen = [(e["type"], e["record_id"]) for e in member.events]
        assert seen == [("contact.created", mine), ("contact.updated", theirs), ("contact.created", marker)]
        for everything in (owner, key):
            assert [r for r in everything.records() if r in (mine, theirs, marker)] == [
                mine, theirs, theirs, mine, mine, marker]
        for listener in (member, owner, key):
            await listener.close()

    asyncio.run(scenario())


def test_two_workspaces_listened_to_at_once_never_cross(
        tier: dict[str, Any], shared_workspace: Workspace, restricted: dict[str, Any]) -> None:
    other: Workspace = restricted["workspace"]

    async def scenario() -> None:
        # GIVEN one client per workspace, on the same process
        mine = await Listener(tier["a"].url, {"token": shared_workspace.api_key}).connect()
        theirs = await Listener(tier["a"].url, {"token": other.api_key}).connect()

        # WHEN both workspaces write
        written = {w.workspace_id: [await asyncio.to_thread(w.contact, f"Apart{i}") for i in range(3)]
                   for w in (shared_workspace, other)}
        for listener, workspace in ((mine, shared_workspace), (theirs, other)):
            await until(lambda listener=listener, workspace=workspace: written[workspace.workspace_id][-1]
                        in listener.records(), "the last write")

        # THEN each got only its own workspace's events
        assert {e["workspace_id"] for e in mine.events} == {shared_workspace.workspace_id}
        assert {e["workspace_id"] for e in theirs.events} == {other.workspace_id}
        await mine.close()
        await theirs.close()

    asyncio.run(scenario())


def test_presence_lists_people_viewing_a_record_across_processes(
        tier: dict[str, Any], restricted: dict[str, Any]) -> None:
    workspace: Workspace = restricted["workspace"]

    async def scenario() -> None:
        # GIVEN a record the member owns, one they may not see, and two people connected to different processes
        shared = await asyncio.to_thread(workspace.contact, "Shared", owner_id=restricted["member_id"])
        hidden = await asyncio.to_thread(workspace.contact, "Hidden", owner_id=restricted["owner_id"])
        person = {"workspace_id": workspace.workspace_id}
        member = await Listener(tier["a"].url, {**person, "token": restricted["member_token"]}).connect()
        owner = await Listener(tier["b"].url, {**person, "token": restricted["owner_token"]}).connect()
        key = await Listener(tier["b"].url, {"token": workspace.api_key}).connect()

        # WHEN both open the shared record (and the key too), and the member tries the hidden one
        record = {"object_type": "contacts", "record_id": shared}
        await owner.client.call("view", record, timeout=10)
        await key.client.call("view", record, timeout=10)
        opened = await member.client.call("view", record, timeout=10)
        refused = await member.client.call("view", {"object_type": "contacts", "record_id": hidden}, timeout=10)

        # THEN both people are listed (not the key), to the member's ack, the owner's room and REST
        people = {restricted["member_id"], restricted["owner_id"]}
        assert {v["user_id"] for v in opened["viewers"]} == people
        await until(lambda: any({v["user_id"] for v in p["viewers"]} == people for p in owner.presence),
                    "the presence message on the other process")
        listed = workspace.http("GET", f"/v1/contacts/{shared}/viewers").json()["data"]
        assert {v["user_id"] for v in listed} == people
        assert refused["status"] == 404
        assert workspace.http("GET", f"/v1/contacts/{hidden}/viewers",
                              key=restricted["member_token"]).status_code == 404

        # WHEN the member's socket goes away
        await member.close()

        # THEN the others hear it and REST lists the owner alone
        await until(lambda: {v["user_id"] for v in owner.presence[-1]["viewers"]} == {restricted["owner_id"]},
                    "the presence message after the member left")
        listed = workspace.http("GET", f"/v1/contacts/{shared}/viewers").json()["data"]
        assert [v["user_id"] for v in listed] == [restricted["owner_id"]]
        await owner.close()
        await key.close()

    asyncio.run(scenario())


# ---- credentials that stop holding -----------------------------------------------------------------------
def test_a_revoked_key_is_disconnected_within_the_recheck(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    async def scenario() -> None:
        # GIVEN a client connected with its own key
        made = shared_workspace.http("POST", "/v1/api-keys", {"name": "rt", "scopes": ["read"]}).json()
        listener = await Listener(tier["a"].url, {"token": made["key"]}).connect()

        # WHEN the key is revoked
        assert shared_workspace.http("DELETE", f"/v1/api-keys/{made['id']}").status_code == 204

        # THEN within the re-check (1 s here) it hears why, and is disconnected
        await until(lambda: listener.gone, "the disconnect")
        assert listener.errors and listener.errors[0]["status"] == 401

    asyncio.run(scenario())


def test_health_and_metrics(tier: dict[str, Any]) -> None:
    health = httpx.get(f"{tier['a'].url}/health", timeout=5)
    metrics = httpx.get(f"{tier['a'].url}/metrics", timeout=5).text
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    for name in ("crm_realtime_connected_clients", "crm_realtime_events_emitted_total",
                 "crm_realtime_dropped_clients_total", "crm_realtime_commit_to_emit_seconds"):
        assert name in metrics, name


# ---- a client that stops reading -------------------------------------------------------------------------
class StalledSocket:
    """A Socket.io client over a bare websocket that reads only when told: after connecting, it stops
    reading, as a client on a frozen tab or a saturated link does. Its receive buffer is small, so the
    server meets the stall after a few events, not after megabytes."""

    def __init__(self, url: str, auth: dict[str, Any]) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window it offers
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        self.sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n").encode())
        self._buffer = b""
        head = self._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert self.read_text().startswith("0{")  # Engine.IO open
        self.send_text("40" + json.dumps(auth))  # Socket.io CONNECT with the auth payload
        connected = self.read_text()
        assert connected.startswith("40{"), connected

    def _read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self._buffer += chunk
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def read_frame(self) -> tuple[int, bytes]:
        first, second = self._read_exactly(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exactly(8))[0]
        return first & 0x0F, self._read_exactly(length)

    def read_text(self) -> str:
        while True:
            opcode, payload = self.read_frame()
            if opcode == 0x8:
                raise EOFError("the server closed the websocket")
            if opcode == 0x1:
                return payload.decode()

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else (
            bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def drain(self) -> list[tuple[str, Any]]:
        """Read everything the server sent until it closed: the Socket.io messages, in order."""
        messages: list[tuple[str, Any]] = []
        while True:
            try:
                text = self.read_text()
            except (EOFError, OSError):
                return messages
            if text.startswith("42"):
                name, *data = json.loads(text[2:])
                messages.append((name, data[0] if data else None))
            elif text == "41":
                messages.append(("disconnect", None))

    def close(self) -> None:
        self.sock.close()


def _metric(url: str, name: str, labels: str = "") -> float:
    """One sample of a realtime process's /metrics (0 when it has none yet)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.split(" ", 1)[0] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _rss_bytes(process: subprocess.Popen[bytes]) -> int:
    """Resident memory of a process group (crm realtime and granian's worker process, which runs the server)."""
    total = 0
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or os.getpgid(int(proc.name)) != process.pid:
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    return total


ESSAY = 60_000  # characters of a long_text custom field: events of ~60 kB fill a stalled socket's buffers soon


def test_a_client_that_stops_reading_is_dropped_while_a_reader_gets_everything_and_it_resumes(
        tier: dict[str, Any], shared_workspace: Workspace) -> None:
    workspace = shared_workspace
    field = f"essay_{uuid.uuid4().hex[:8]}"
    made = workspace.http("POST", "/v1/fields", {"object_type": "contacts", "key": field, "label": field,
                                                 "type": "long_text"})
    assert made.status_code == 201, made.text

    def flood(batches: int, tag: str) -> list[str]:
        """Batches of 15 big contacts (a body under 1 MB): each a relay pass longer than the clients' queue."""
        ids = []
        for batch in range(batches):
            reply = workspace.http("POST", "/v1/contacts/batch/create", {"inputs": [
                {"first_name": f"{tag}{batch}-{i}", "custom_fields": {field: "x" * ESSAY}} for i in range(15)]})
            assert reply.status_code == 200, reply.text[:300]
            ids += [r["record"]["id"] for r in reply.json()["results"]]
        return ids

    async def scenario() -> None:
        # GIVEN a process whose connections queue 4 events, a client on it that stops reading once connected
        # (a frozen tab: the kernel's buffers fill, then the transport's, then its queue), and one that reads
        small = start_realtime({**tier["env"], "REALTIME_SEND_QUEUE_SIZE": "4", "REALTIME_SLOW_CLIENT_SECONDS": "1"},
                               tier["dir"])
        auth = {"token": workspace.api_key}
        try:
            stalled = await asyncio.to_thread(StalledSocket, small.url, auth)
            reader = await Listener(small.url, auth).connect()
            dropped = 'reason="slow_consumer"'
            first = await asyncio.to_thread(workspace.contact, "BeforeTheFlood")
            await until(lambda: first in reader.records(), "the reader's first event")

            # WHEN the API writes far more than the stalled client's buffers hold, until the server drops it
            written: list[str] = []
            deadline = time.monotonic() + 120
            while _metric(small.url, "crm_realtime_dropped_clients_total", dropped) == 0:
                assert time.monotonic() < deadline, f"not dropped after {len(written)} events:\n{small.output()}"
                written += await asyncio.to_thread(flood, 3, "Flood")
            await until(lambda: written[-1] in reader.records(), "the reader's last event", timeout=60)
            at_drop = _rss_bytes(small.process)
            # ... and as much again once it is gone
            after = await asyncio.to_thread(flood, 10, "After")
            await until(lambda: after[-1] in reader.records(), "the reader's last event after the drop", timeout=60)

            # THEN the server counted one slow client, and only the reader is connected
            assert _metric(small.url, "crm_realtime_dropped_clients_total", dropped) == 1
            assert _metric(small.url, "crm_realtime_connected_clients") == 1
            # ... the reader got every event, once, in order, through the flood and after
            assert _consecutive(reader.sequences()) and len(reader.sequences()) == 1 + len(written) + len(after)
            assert reader.records() == [first, *written, *after]
            # ... the process kept none of what it passed on after the drop (twice as many bytes again went
            # through; the allocator alone moved RSS by up to ~3.5 MB between runs, so the bound leaves room)
            carried = len(after) * ESSAY
            assert _rss_bytes(small.process) - at_drop < carried * 3 / 4, (at_drop, _rss_bytes(small.process), carried)

            # WHEN the stalled client reads what reached it, then resumes after the last event it got
            received = await asyncio.to_thread(stalled.drain)
            got = [int(data["sequence"]) for name, data in received if name == "event"]
            errors = [data for name, data in received if name == "error"]
            resumed = await Listener(tier["a"].url, {**auth, "after": got[-1]}).connect()
            await until(lambda: after[-1] in resumed.records(), "the resumed client's last event", timeout=60)

            # THEN behind what filled its buffers came the reason, with no position in it (only the client knows
            # what reached it)
            assert [e["reason"] for e in errors] == ["slow_consumer"] and "last_sequence" not in errors[0], errors
            # ... and it got everything from its first event on, once, in order, across the drop
            combined = got + resumed.sequences()
            assert got[0] == reader.sequences()[0] and _consecutive(combined)
            assert combined[-1] == reader.sequences()[-1]
            await reader.close()
            await resumed.close()
            stalled.close()
        finally:
            small.stop()

    asyncio.run(scenario())


# ---- sessions, members and teams that change while connected ---------------------------------------------
def test_a_session_cookie_connects_and_signing_out_disconnects_within_the_recheck(
        tier: dict[str, Any], issuer: FirebaseTestIssuer) -> None:
    # GIVEN a person of one workspace who signed in through the REST API: a session cookie
    workspace = _workspace(tier, "Browser")
    signed_in = httpx.post(f"{workspace.api.base_url}/v1/sessions", timeout=30, json={
        "id_token": issuer.mint(f"uid-{uuid.uuid4().hex}", email=workspace.owner_email)})
    assert signed_in.status_code == 201, signed_in.text
    cookie = signed_in.headers["set-cookie"].split(";", 1)[0]
    assert cookie.startswith("crm_session=")

    async def scenario() -> None:
        # WHEN a browser connects with the cookie alone (no auth payload), over each transport
        listeners = [await Listener(tier[p].url, None, (t,), headers={"Cookie": cookie}).connect()
                     for p, t in (("a", "websocket"), ("b", "polling"))]
        # ... THEN it hears the workspace's writes
        contact = await asyncio.to_thread(workspace.contact, "ByCookie")
        for listener in listeners:
            await until(lambda listener=listener: contact in listener.records(), "the event over the session")

        # WHEN a page of another site opens a socket in the person's browser (which sends the cookie along)
        # THEN it is refused (else any page could read the person's workspace live); the tier's own is not
        foreign = Listener(tier["a"].url, None, headers={"Cookie": cookie, "Origin": "https://evil.example"})
        with pytest.raises(socketio.exceptions.ConnectionError):
            await foreign.connect()
        own = await Listener(tier["a"].url, None, headers={"Cookie": cookie, "Origin": tier["a"].url}).connect()
        listeners.append(own)

        # WHEN the person signs out
        signed_out = httpx.delete(f"{workspace.api.base_url}/v1/sessions/current", timeout=30,
                                  headers={"Cookie": cookie, "X-Requested-With": "XMLHttpRequest"})
        assert signed_out.status_code == 204, signed_out.text

        # THEN within the re-check (1 s here) each socket hears why, and is disconnected
        for listener in listeners:
            await until(lambda listener=listener: listener.gone, "the disconnect after signing out")
            assert [e["status"] for e in listener.errors] == [401], listener.errors
        # ... and the cookie no longer connects
        refused = await Listener(tier["a"].url, None, headers={"Cookie": cookie}).refused()
        assert refused["status"] == 401

    asyncio.run(scenario())


async def _written_until_heard(listener: Listener, write: Callable[[], str], what: str) -> str:
    """Write again and again until the listener hears one write (a change that takes effect at the next re-check,
    whose moment the test cannot see); the record it heard."""
    deadline = time.monotonic() + WAIT
    while True:
        record = await asyncio.to_thread(write)
        try:
            await until(lambda record=record: record in listener.records(), what, timeout=2)
            return record
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_a_team_change_moves_the_visibility_at_the_recheck_and_a_removed_member_is_disconnected(
        tier: dict[str, Any], issuer: FirebaseTestIssuer, restricted: dict[str, Any]) -> None:
    workspace: Workspace = restricted["workspace"]
    colleague = restricted["member_id"]  # another member, whose records this one may not see yet
    email = f"moving-{uuid.uuid4().hex[:8]}@example.com"
    invited = workspace.http("POST", "/v1/members", {"email": email, "role": "member"})
    assert invited.status_code == 201, invited.text
    member_id = invited.json()["user_id"]
    token = issuer.mint(f"uid-{uuid.uuid4().hex}", email=email)

    async def scenario() -> None:
        # GIVEN a member connected with a Firebase ID token, who sees their own records, not the colleague's
        member = await Listener(tier["b"].url, {"token": token, "workspace_id": workspace.workspace_id}).connect()
        hidden = await asyncio.to_thread(workspace.contact, "Colleagues", owner_id=colleague)
        own = await asyncio.to_thread(workspace.contact, "Own", owner_id=member_id)
        await until(lambda: own in member.records(), "the member's own record")
        assert hidden not in member.records()

        # WHEN the two are put in one team
        team = workspace.http("POST", "/v1/teams", {"name": f"Pair {uuid.uuid4().hex[:6]}",
                                                    "member_ids": [member_id, colleague]})
        assert team.status_code == 201, team.text

        # THEN from the next re-check on, the colleague's records reach the member
        await _written_until_heard(member, lambda: workspace.contact("Teammates", owner_id=colleague),
                                   "a teammate's record after the team was made")

        # WHEN the member leaves the team
        left = workspace.http("DELETE", f"/v1/teams/{team.json()['id']}/members/{member_id}")
        assert left.status_code == 204, left.text

        # THEN from the next re-check on, the colleague's records stop, the member's own still come
        def pair() -> str:
            workspace.contact("NotAnyMore", owner_id=colleague)
            return workspace.contact("Marker", owner_id=member_id)

        while True:
            seen = len(member.events)
            marker = await _written_until_heard(member, pair, "the member's marker")
            if [e["record_id"] for e in member.events[seen:]] == [marker]:
                break  # the colleague's record written just before was withheld: the team is gone for it
        after = await asyncio.to_thread(pair)
        await until(lambda: after in member.records(), "the marker after the narrowing")
        assert member.records()[-1] == after and member.events[-2]["record_id"] != after

        # WHEN the member is removed from the workspace
        assert workspace.http("DELETE", f"/v1/members/{member_id}").status_code == 204

        # THEN within the re-check the socket hears why (not a member: 403), and is disconnected
        await until(lambda: member.gone, "the disconnect after the removal")
        assert [e["status"] for e in member.errors] == [403], member.errors

    asyncio.run(scenario())


def test_a_viewer_whose_process_dies_expires_from_the_list_and_the_room_hears_it(
        tier: dict[str, Any], restricted: dict[str, Any]) -> None:
    workspace: Workspace = restricted["workspace"]
    member_id, owner_id = restricted["member_id"], restricted["owner_id"]

    async def scenario() -> None:
        # GIVEN a record open by the owner (on a lasting process) and by the member, on a process of its own
        # (presence entries live 3 s here unless their process refreshes them)
        record = {"object_type": "contacts",
                  "record_id": await asyncio.to_thread(workspace.contact, "Watched", owner_id=member_id)}
        doomed = start_realtime(tier["env"], tier["dir"])
        person = {"workspace_id": workspace.workspace_id}
        owner = await Listener(tier["b"].url, {**person, "token": restricted["owner_token"]}).connect()
        member = await Listener(doomed.url, {**person, "token": restricted["member_token"]}).connect()
        await owner.client.call("view", record, timeout=10)

        def listed() -> set[str]:
            reply = workspace.http("GET", f"/v1/contacts/{record['record_id']}/viewers")
            assert reply.status_code == 200, reply.text
            return {v["user_id"] for v in reply.json()["data"]}

        def heard(people: set[str]) -> Callable[[], bool]:
            return lambda: bool(owner.presence) and {v["user_id"] for v in owner.presence[-1]["viewers"]} == people

        # WHEN the member opens it, then leaves it (the `leave` message)
        await member.client.call("view", record, timeout=10)
        await until(heard({owner_id, member_id}), "the presence message with both")
        left = await member.client.call("leave", record, timeout=10)

        # THEN the owner hears it, and the ack lists the owner alone
        assert [v["user_id"] for v in left["viewers"]] == [owner_id]
        await until(heard({owner_id}), "the presence message after the leave")

        # WHEN the member opens it again, and their process is killed (no disconnect, no leave reaches anyone)
        await member.client.call("view", record, timeout=10)
        await until(heard({owner_id, member_id}), "the presence message with both, again")
        assert await asyncio.to_thread(listed) == {owner_id, member_id}
        doomed.stop(signal.SIGKILL)

        # THEN within the TTL the member drops out of the REST list, and the owner's room hears it
        deadline = time.monotonic() + WAIT
        while await asyncio.to_thread(listed) != {owner_id}:
            assert time.monotonic() < deadline, "the dead process's viewer is still listed"
            await asyncio.sleep(0.2)
        await until(heard({owner_id}), "the presence message after the viewer expired")
        await owner.close()
        await member.close()

    asyncio.run(scenario())
