"""`crm local`'s Redis stand-in: one in-memory Redis shared over TCP, whose connections send each reply
at once (TCP_NODELAY), so a pipeline's replies never wait for the client's delayed ACK; and its pub/sub
carries the relay's announcements to the real-time tier's subscriber, as Redis does."""
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from layers.realtime.broadcast import encode_announcement
from layers.realtime.feed import Connection
from layers.realtime.ports import Owner, Ports
from layers.realtime.server import RealtimeConfig, RealtimeServer
from layers.runtime.local_redis import LocalRedisServer, start_local_redis
from shared.context import Actor, Scope


def test_accepted_connections_have_nagle_off() -> None:
    # GIVEN the stand-in's listening socket, and a client connecting to it
    server = LocalRedisServer(("127.0.0.1", 0))
    try:
        with socket.create_connection(server.server_address[:2]):
            # WHEN the server accepts the connection
            accepted, _ = server.get_request()
            with accepted:
                # THEN its replies go out without waiting for the previous one's ACK
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.server_close()


def test_clients_share_one_redis_and_pipelines_answer_in_order() -> None:
    # GIVEN the stand-in served on a free port, and two clients (as the server and worker processes are)
    server = start_local_redis()
    try:
        first = redis.Redis.from_url(server.url, decode_responses=True)
        second = redis.Redis.from_url(server.url, decode_responses=True)

        # WHEN one runs a pipeline like the rate limiter's, and the other reads
        pipe = first.pipeline(transaction=False)
        pipe.incr("limit:w")
        pipe.expire("limit:w", 60)
        pipe.incr("limit:w")
        replies = pipe.execute()

        # THEN each reply answers its own command, and the other client sees the same data
        assert replies == [1, True, 2]
        assert second.get("limit:w") == "2" and 0 < second.ttl("limit:w") <= 60
        first.close()
        second.close()
    finally:
        server.shutdown()
        server.server_close()


# ---- pub/sub, as the real-time tier uses it ----------------------------------------------------------------
def test_publish_on_one_connection_reaches_a_subscriber_on_another_in_order() -> None:
    async def scenario() -> tuple[list[int], list[tuple[str, str, str]], int]:
        # GIVEN the stand-in, a subscriber as a realtime process holds one (redis.asyncio, two channels, health
        # checks on, `listen()`), and a publisher as the worker's relay holds one (sync redis-py)
        server = start_local_redis()
        subscriber = aioredis.Redis.from_url(server.url, decode_responses=True, health_check_interval=30)
        publisher = redis.Redis.from_url(server.url, decode_responses=True)
        pubsub = subscriber.pubsub()
        try:
            await pubsub.subscribe("rt:events", "rt:events:presence")
            received: list[tuple[str, str, str]] = []

            async def listen() -> None:
                async for message in pubsub.listen():
                    if message["type"] not in ("subscribe", "unsubscribe"):
                        received.append((message["type"], message["channel"], message["data"]))

            listening = asyncio.create_task(listen())
            # ... and a health check's PING sent while subscribed (the stand-in answers it with a bare string,
            # Redis with ["pong", ...]; redis-py takes either for its health check, and must not see a message)
            await pubsub.ping(pubsub.HEALTH_CHECK_MESSAGE)

            # WHEN the publisher sends on both channels, one message at a time as each is taken
            counts = []
            for n, channel in enumerate(CHANNELS):
                counts.append(await asyncio.to_thread(publisher.publish, channel, f"m{n}"))
                deadline = time.monotonic() + 10
                while len(received) <= n:
                    assert time.monotonic() < deadline, f"message {n} did not arrive: {received}"
                    await asyncio.sleep(0.005)

            # ... and after the subscriber unsubscribes
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await pubsub.unsubscribe()
            # UNSUBSCRIBE is only sent here; the server has dropped the subscription once it confirms it (the
            # publisher's connection could otherwise overtake the command)
            deadline = time.monotonic() + 10
            while pubsub.subscribed:
                assert time.monotonic() < deadline, "the unsubscribe was never confirmed"
                await pubsub.get_message(timeout=0.1)
            after = await asyncio.to_thread(publisher.publish, "rt:events", "unheard")
            return counts, received, after
        finally:
            await pubsub.aclose()
            await subscriber.aclose()
            publisher.close()
            server.shutdown()
            server.server_close()

    counts, received, after = asyncio.run(scenario())
    # THEN each PUBLISH reached the one subscriber; every message arrived once, in order, on its channel, and
    # nothing else did
    assert counts == [1] * len(CHANNELS)
    assert received == [("message", c, f"m{n}") for n, c in enumerate(CHANNELS)]
    # ... and once unsubscribed nobody listens
    assert after == 0


CHANNELS = ["rt:events", "rt:events:presence", "rt:events"] * 2


class _Log:
    """An event log of one workspace for the realtime server's feed (what the relay committed)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

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


def test_the_realtime_servers_subscriber_hears_the_relays_announcements_through_the_stand_in() -> None:
    workspace_id = "01JWORKSPACEAAAAAAAAAAAAAA"

    async def scenario() -> list[int]:
        # GIVEN the stand-in, a realtime server subscribed through it, and a connection of one workspace
        server = start_local_redis()
        log = _Log([])
        ports = Ports(event_log=log, owner_of=lambda w, o, r: Owner(owned=False),
                      filter_matches=lambda w, o, r, g: True, check_subscription=lambda s, raw: raw)
        realtime = RealtimeServer(ports, _NoAuth(), RealtimeConfig(channel="rt:local", cursor_secret="x"),
                                  lambda: aioredis.Redis.from_url(server.url, decode_responses=True))
        connection = Connection("c", Scope(workspace_id=workspace_id, actor=Actor("api_key", "k")), queue_size=10)
        publisher = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            await realtime.start()
            await asyncio.wait_for(realtime.subscribed.wait(), 10)
            await realtime.fanout.attach(connection, None)

            # WHEN the relay commits two events and announces them on the channel (another connection)
            log.events += [{"id": f"e{n}", "sequence": n, "type": "contact.created", "object_type": "contacts",
                            "record_id": f"01JRECORD{n:017d}", "workspace_id": workspace_id,
                            "occurred_at": "2026-01-01T00:00:00Z", "data": {}} for n in (1, 2)]
            await asyncio.to_thread(publisher.publish, "rt:local", encode_announcement(log.events))
            deadline = time.monotonic() + 10
            while connection.queue.qsize() < 2:
                assert time.monotonic() < deadline, "the announcement did not reach the connection"
                await asyncio.sleep(0.005)
            return [connection.queue.get_nowait().sequence for _ in range(2)]  # type: ignore[union-attr]
        finally:
            await realtime.stop()
            publisher.close()
            server.shutdown()
            server.server_close()

    # THEN the connection has both, in order
    assert asyncio.run(scenario()) == [1, 2]
