"""The real-time subscriber's Redis link on the real Redis: a link that goes silent is found dead and replaced.

Redis sends nothing on an idle subscription, and a half-open TCP connection (a failed-over node, a NAT that
forgot the flow) never errors by itself, so without a keepalive a realtime process could wait forever on a
dead link while announcements go elsewhere. The link here runs through a proxy that can freeze it.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis

from layers.realtime.broadcast import encode_announcement
from layers.realtime.feed import Connection
from layers.realtime.ports import Owner, Ports
from layers.realtime.server import RealtimeConfig, RealtimeServer
from shared.context import Actor, Scope
from tests.integration.conftest import REDIS_URL
from tests.support.faults import FaultProxy

WORKSPACE = "01JWORKSPACEAAAAAAAAAAAAAA"


class _Log:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def events_after(self, workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["sequence"] > after][:limit]

    def oldest_sequence(self, workspace_id: str) -> int | None:
        return 1 if self.events else None

    def last_sequences(self, workspace_ids: Sequence[str]) -> dict[str, int]:
        return {w: len(self.events) for w in workspace_ids}


class _NoAuth:
    def authenticate(self, credentials: Any) -> Any:
        raise AssertionError("no socket connects in this test")

    def recheck(self, grant: Any) -> Any:
        raise AssertionError("no socket connects in this test")


async def _until(condition: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


def test_a_silent_subscription_link_is_found_dead_and_replaced_without_losing_an_announcement(
        real_redis: redis.Redis) -> None:
    target = urlsplit(REDIS_URL)
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 6379)
    channel = f"rt:test:{uuid.uuid4().hex}"
    log = _Log()

    def event(n: int) -> dict[str, Any]:
        return {"id": f"e{n}", "sequence": n, "type": "contact.created", "object_type": "contacts",
                "record_id": f"01JRECORD{n:017d}", "workspace_id": WORKSPACE,
                "occurred_at": "2026-01-01T00:00:00Z", "data": {}}

    async def scenario() -> list[int]:
        # GIVEN a realtime server whose subscription runs through the proxy (keepalive 0.5 s), heal timer off,
        # and a connection of one workspace
        ports = Ports(event_log=log, owner_of=lambda w, o, r: Owner(owned=False),
                      filter_matches=lambda w, o, r, g: True, check_subscription=lambda s, raw: raw)
        config = RealtimeConfig(channel=channel, cursor_secret="x", heal_seconds=3600, redis_keepalive_seconds=0.5)
        db = urlsplit(REDIS_URL).path or "/0"
        realtime = RealtimeServer(ports, _NoAuth(), config, lambda: aioredis.Redis.from_url(
            f"redis://127.0.0.1:{proxy.port}{db}", decode_responses=True, socket_connect_timeout=1.0))
        connection = Connection("c", Scope(workspace_id=WORKSPACE, actor=Actor("api_key", "k")), queue_size=10)
        try:
            await realtime.start()
            await asyncio.wait_for(realtime.subscribed.wait(), 10)
            await realtime.fanout.attach(connection, None)
            # ... that hears announcements through the link
            log.events.append(event(1))
            await asyncio.to_thread(real_redis.publish, channel, encode_announcement(log.events[-1:]))
            await _until(lambda: connection.queue.qsize() == 1, "the first announcement did not arrive")

            # WHEN the link goes silent both ways (nothing closes it) and an event is committed meanwhile, its
            # announcement published where the dead link cannot hear it
            proxy.freeze()
            log.events.append(event(2))
            await asyncio.to_thread(real_redis.publish, channel, encode_announcement(log.events[-1:]))

            # THEN the server finds the link dead (it stops counting itself subscribed) ...
            await _until(lambda: not realtime.subscribed.is_set(), "the silent link was never found dead")
            # ... and once Redis answers again it subscribes anew and heals from the event log: event 2 arrives
            proxy.resume()
            await asyncio.wait_for(realtime.subscribed.wait(), 30)
            await _until(lambda: connection.queue.qsize() == 2, "the event announced on the dead link was lost")
            # ... and the new link hears the next announcement
            log.events.append(event(3))
            await asyncio.to_thread(real_redis.publish, channel, encode_announcement(log.events[-1:]))
            await _until(lambda: connection.queue.qsize() == 3, "the new link hears nothing")
            return [connection.queue.get_nowait().sequence for _ in range(3)]  # type: ignore[union-attr]
        finally:
            await realtime.stop()

    try:
        # ... every event once, in order
        assert asyncio.run(scenario()) == [1, 2, 3]
    finally:
        proxy.close()
