"""The Socket.io server of the real-time tier: connections, their messages, and the timers that keep them true.

Server → client: `event` (an event-log body, with `sequence`), `resync_required`, `presence`, `error` (a
problem, sent before the server disconnects a client: revoked, too slow). Client → server, each
acknowledged: `subscribe` / `unsubscribe` (the applied set, or a problem), `view` / `leave` (a record's
viewers, or a problem). A refused connection gets `connect_error` with `{message, data: <problem>}`.

Timers, per process: the Redis subscriber (announcements → feeds; presence → record rooms), the heal
(feeds against the log), the credential re-check, the presence refresh. The ASGI app also answers
`GET /health` (200 while Redis answers) and `GET /metrics`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
import socketio
from engineio import packet as engineio_packet
from socketio import packet as socketio_packet

from layers.auth.principals import UserPrincipal
from layers.cache.ratelimit import FailureBudget
from layers.http.problems import problem_body
from layers.observability.metrics import REALTIME_CONNECTED, REALTIME_DROPPED, render
from layers.realtime.auth import Credentials, Grant, client_address, credentials_from, resume_position
from layers.realtime.broadcast import decode_announcement
from layers.realtime.feed import AsyncPorts, Connection, Fanout, PreparedEvent, send_loop
from layers.realtime.ports import Ports
from layers.realtime.presence import PRESENCE_OBJECTS, member, people, presence_key
from layers.realtime.subscriptions import MAX_SUBSCRIPTIONS, Subscription
from shared.clock import isoformat, utcnow
from shared.errors import AppError, BadRequest, NotFound, RateLimited, ServiceUnavailable, ValidationFailed
from shared.ids import is_valid_id

log = logging.getLogger(__name__)
NAMESPACE = "/"
TRANSPORT_HIGH_WATER = 32  # packets the transport may hold for a client before its sender waits
MAX_VIEWS = 20


class Authenticator(Protocol):
    def authenticate(self, credentials: Credentials) -> Grant: ...

    def recheck(self, grant: Grant) -> Any: ...


@dataclass(frozen=True)
class RealtimeConfig:
    channel: str
    cursor_secret: str
    send_queue_size: int = 1000
    slow_client_seconds: float = 2.0
    recheck_seconds: float = 30.0
    heal_seconds: float = 5.0
    backfill_limit: int = 10_000
    presence_ttl_seconds: int = 30
    trusted_proxy_hops: int = 1
    cors_origins: list[str] = field(default_factory=list)
    websocket_only: bool = False
    # The subscriber's Redis link: after this long without a byte from Redis it sends a PING, and a link that
    # stays silent as long again is taken for dead (a half-open TCP connection never errors by itself).
    redis_keepalive_seconds: float = 15.0

    @property
    def presence_channel(self) -> str:
        return f"{self.channel}:presence"


def problem(error: AppError) -> dict[str, Any]:
    return problem_body(error, "")


@dataclass
class Viewing:
    key: str
    member: str | None  # None for an API key: in the room, never listed
    object_type: str
    record_id: str


class RealtimeServer:
    def __init__(self, ports: Ports, auth: Authenticator, config: RealtimeConfig,
                 redis_client: Callable[[], aioredis.Redis], failures: FailureBudget | None = None) -> None:
        self.config = config
        self.ports = AsyncPorts(ports)
        self.fanout = Fanout(self.ports, backfill_limit=config.backfill_limit,
                             slow_client_seconds=config.slow_client_seconds)
        self._auth = auth
        self._redis_factory = redis_client
        self._redis: aioredis.Redis | None = None
        self._failures = failures
        self._tasks: dict[str, list[asyncio.Task[Any]]] = {}
        # Every accepted connection, from its `connect` on (the fan-out registers it a moment later, once the
        # handshake is done: a `subscribe` sent right after connecting must find it).
        self.connections: dict[str, Connection] = {}
        self._views: dict[str, dict[str, Viewing]] = {}
        self._timers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.subscribed = asyncio.Event()
        # None, not []: engine.io reads [] as "check no Origin at all", and a page of any site could then open
        # a socket with a person's session cookie. None admits the tier's own origin (Host, X-Forwarded-*) and
        # clients that send no Origin (servers, scripts); others must be listed in REALTIME_CORS_ORIGINS.
        cors: str | list[str] | None = config.cors_origins or None
        if cors == ["*"]:
            cors = "*"
        self.sio = socketio.AsyncServer(
            async_mode="asgi", cors_allowed_origins=cors,
            transports=["websocket"] if config.websocket_only else ["polling", "websocket"],
            max_http_buffer_size=64 * 1024)
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("subscribe", self._subscribe)
        self.sio.on("unsubscribe", self._unsubscribe)
        self.sio.on("view", self._view)
        self.sio.on("leave", self._leave)
        self.app = socketio.ASGIApp(self.sio, other_asgi_app=self._other, socketio_path="socket.io")

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = self._redis_factory()
        return self._redis

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        for name, work in (("subscriber", self._subscriber), ("heal", self._heal_timer),
                           ("recheck", self._recheck_timer), ("presence", self._presence_timer)):
            self._timers.append(asyncio.create_task(work(), name=f"realtime-{name}"))

    async def stop(self) -> None:
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        for sid in list(self.connections):
            await self._forget(sid)
        if self._redis is not None:
            await self._redis.aclose()

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The whole ASGI app: lifespan starts and stops the timers; Socket.io, /health, /metrics."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.app(scope, receive, send)

    async def _other(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if path == "/health":
            try:
                await asyncio.wait_for(self.redis.ping(), 1.0)
                await _respond(send, 200, b'{"status":"ok"}')
            except Exception:
                await _respond(send, 503, b'{"status":"unavailable","checks":{"redis":false}}')
        elif path == "/metrics":
            body, content_type = render()
            await _respond(send, 200, body, content_type)
        else:
            await _respond(send, 404, json.dumps(problem(NotFound(f"no route {path}"))).encode(),
                           "application/problem+json")

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- connect / disconnect -----------------------------------------------------------------------
    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        address = client_address(environ, self.config.trusted_proxy_hops)
        try:
            grant, after = await self._admit(address, environ, auth)
        except AppError as refused:
            raise socketio.exceptions.ConnectionRefusedError(refused.detail, problem(refused)) from None
        except Exception:
            log.exception("real-time connect failed")
            away = ServiceUnavailable("real-time updates are unavailable right now; retry")
            raise socketio.exceptions.ConnectionRefusedError(away.detail, problem(away)) from None
        connection = Connection(sid, grant.scope, queue_size=self.config.send_queue_size, grant=grant,
                                on_overflow=self._too_slow)
        REALTIME_CONNECTED.inc()
        self.connections[sid] = connection
        self._tasks[sid] = [asyncio.create_task(self._run(connection, after), name=f"realtime-{sid}")]

    async def _admit(self, address: str, environ: dict[str, Any], auth: Any) -> tuple[Grant, int | None]:
        failures = self._failures
        if failures is not None:
            retry_after = await asyncio.to_thread(failures.retry_after, address)
            if retry_after is not None:
                raise RateLimited(f"too many failed authentications from this address: at most {failures.budget} "
                                  f"per {failures.window_seconds} s", extra={"retry_after": retry_after})
        if auth is not None and not isinstance(auth, dict):
            raise BadRequest("auth must be an object: {token, workspace_id, after}")
        try:
            credentials = credentials_from(auth, environ)
            after = resume_position(auth, self.config.cursor_secret)
            grant = await asyncio.to_thread(self._auth.authenticate, credentials)
        except AppError as error:
            if error.status == 401 and failures is not None:
                await asyncio.to_thread(failures.spend, address)
            raise
        return grant, after

    async def _run(self, connection: Connection, after: int | None) -> None:
        """After the CONNECT went out: catch up (a resume), then send until the connection ends."""
        sid = connection.sid
        while not self.sio.manager.is_connected(sid, NAMESPACE):  # the handshake finishes after `connect`
            if connection.closed:
                return
            await asyncio.sleep(0.005)

        async def emit(name: str, data: dict[str, Any], prepared: PreparedEvent | None) -> None:
            if prepared is None:
                await self.sio.emit(name, data, to=sid, namespace=NAMESPACE)
                return
            if prepared.wire is None:  # what python-socketio's room emit does: one encoding for every recipient
                encoded = self.sio.packet_class(socketio_packet.EVENT, namespace=NAMESPACE, data=[name, data]).encode()
                prepared.wire = [engineio_packet.Packet(engineio_packet.MESSAGE, part)
                                 for part in (encoded if isinstance(encoded, list) else [encoded])]
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
            if eio_sid is None:
                return  # gone meanwhile; its disconnect handler forgets the connection
            for part in prepared.wire:
                await self.sio.eio.send_packet(eio_sid, part)

        sender = asyncio.create_task(send_loop(connection, emit, lambda: self._writable(sid)))
        self._tasks.setdefault(sid, []).append(sender)
        await self.fanout.attach(connection, after)
        await sender

    async def _writable(self, sid: str) -> None:
        """Wait while the transport still holds many packets for this client (backpressure, step 7)."""
        while sid in self.connections:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
            socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
            queue = getattr(socket, "queue", None)
            if queue is None or queue.qsize() < TRANSPORT_HIGH_WATER:
                return
            await asyncio.sleep(0.01)

    def _too_slow(self, connection: Connection) -> None:
        REALTIME_DROPPED.labels(reason="slow_consumer").inc()
        # No position in the problem: what was queued, or already handed to the transport, may never have
        # reached the client; only the client knows the last sequence it got, and resumes after that.
        error = RateLimited("this client did not keep up with its events; reconnect with `after` set to the "
                            "last sequence it received to resume", extra={"reason": "slow_consumer"})
        self._spawn(self._drop(connection.sid, error))

    async def _drop(self, sid: str, error: AppError) -> None:
        body = problem(error)
        body.setdefault("reason", error.slug)
        with contextlib.suppress(Exception):
            await self.sio.emit("error", body, to=sid, namespace=NAMESPACE)
        await self._forget(sid)
        with contextlib.suppress(Exception):
            await self.sio.disconnect(sid, namespace=NAMESPACE)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        await self._forget(sid)

    async def _forget(self, sid: str) -> None:
        self.fanout.detach(sid)
        if self.connections.pop(sid, None) is not None:
            REALTIME_CONNECTED.dec()
        for task in self._tasks.pop(sid, []):
            task.cancel()
        views = self._views.pop(sid, {})
        for viewing in views.values():
            with contextlib.suppress(Exception):
                await self._unview(viewing)

    # ---- subscriptions ------------------------------------------------------------------------------
    async def _subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        connection = self.connections.get(sid)
        if connection is None:
            return problem(BadRequest("not connected"))
        try:
            if len(connection.subscriptions.items) >= MAX_SUBSCRIPTIONS and not (
                    isinstance(data, dict) and data.get("id") in connection.subscriptions.items):
                raise ValidationFailed(f"a connection has at most {MAX_SUBSCRIPTIONS} subscriptions")
            applied = await asyncio.to_thread(self.ports.ports.check_subscription, connection.scope, data)
        except AppError as invalid:
            return problem(invalid)
        subscription = Subscription.from_applied(applied)
        connection.subscriptions.add(subscription)
        return {"subscription": subscription.read(), "subscriptions": connection.subscriptions.read()}

    async def _unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        connection = self.connections.get(sid)
        if connection is None:
            return problem(BadRequest("not connected"))
        subscription_id = data.get("id") if isinstance(data, dict) else None
        if (data is not None and not isinstance(data, dict)) or (
                subscription_id is not None and not isinstance(subscription_id, str)):
            return problem(ValidationFailed("unsubscribe takes {id} (one subscription) or nothing (all)"))
        if not connection.subscriptions.remove(subscription_id):
            return problem(NotFound(f"no subscription {subscription_id!r} on this connection"))
        return {"subscriptions": connection.subscriptions.read()}

    # ---- presence -----------------------------------------------------------------------------------
    async def _view(self, sid: str, data: Any = None) -> dict[str, Any]:
        connection = self.connections.get(sid)
        if connection is None:
            return problem(BadRequest("not connected"))
        try:
            object_type, record_id = _record_of(data)
            views = self._views.setdefault(sid, {})
            name = f"{object_type}/{record_id}"
            if name not in views:
                if len(views) >= MAX_VIEWS:
                    raise ValidationFailed(f"a connection views at most {MAX_VIEWS} records at once")
                await self._check_visible(connection, object_type, record_id)
                grant: Grant = connection.grant
                person: UserPrincipal | None = grant.user
                key = presence_key(connection.workspace_id, object_type, record_id)
                entry = member(sid, person.user_id, person.email, str(isoformat(utcnow()))) if person else None
                viewing = views[name] = Viewing(key, entry, object_type, record_id)
                await self.sio.enter_room(sid, self._room(connection.workspace_id, name), namespace=NAMESPACE)
                if entry is not None:
                    await self._touch(viewing)
                    await self._announce_presence(connection.workspace_id, viewing)
        except AppError as refused:
            return problem(refused)
        return {"object_type": object_type, "record_id": record_id,
                "viewers": await self._viewers(views[name].key)}

    async def _leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        connection = self.connections.get(sid)
        if connection is None:
            return problem(BadRequest("not connected"))
        try:
            object_type, record_id = _record_of(data)
        except AppError as refused:
            return problem(refused)
        name = f"{object_type}/{record_id}"
        viewing = self._views.get(sid, {}).pop(name, None)
        if viewing is None:
            return problem(NotFound(f"this connection is not viewing {name}"))
        await self.sio.leave_room(sid, self._room(connection.workspace_id, name), namespace=NAMESPACE)
        await self._unview(viewing, workspace_id=connection.workspace_id)
        return {"object_type": object_type, "record_id": record_id, "viewers": await self._viewers(viewing.key)}

    async def _check_visible(self, connection: Connection, object_type: str, record_id: str) -> None:
        owner = await self.ports.owner_of(connection.workspace_id, object_type, record_id)
        visible = connection.scope.visible_owner_ids
        if not owner.exists or (visible is not None and owner.owned and owner.owner_id not in visible):
            raise NotFound(f"no {object_type} record {record_id}")

    async def _touch(self, viewing: Viewing) -> None:
        if viewing.member is None:
            return
        ttl = self.config.presence_ttl_seconds
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(viewing.key, {viewing.member: time.time() + ttl})
            # The key outlives its entries by a TTL: a process still viewing the record finds an entry that
            # expired (its socket's process died) and tells the room, before the key vanishes with it.
            pipe.expire(viewing.key, 2 * ttl)
            await pipe.execute()

    async def _unview(self, viewing: Viewing, *, workspace_id: str | None = None) -> None:
        if viewing.member is None:
            return
        await self.redis.zrem(viewing.key, viewing.member)
        workspace_id = workspace_id or _workspace_of(viewing.key)
        await self._announce_presence(workspace_id, viewing)

    async def _viewers(self, key: str) -> list[dict[str, Any]]:
        return people([_text(m) for m in await self.redis.zrangebyscore(key, time.time(), "+inf")])

    async def _announce_presence(self, workspace_id: str, viewing: Viewing) -> None:
        """Every process's sockets in the record's room hear who views it now."""
        message = {"workspace_id": workspace_id, "object_type": viewing.object_type,
                   "record_id": viewing.record_id, "viewers": await self._viewers(viewing.key)}
        await self.redis.publish(self.config.presence_channel, json.dumps(message, separators=(",", ":")))

    @staticmethod
    def _room(workspace_id: str, name: str) -> str:
        return f"record:{workspace_id}:{name}"

    # ---- timers -------------------------------------------------------------------------------------
    async def _subscriber(self) -> None:
        """Announcements → feeds, presence → rooms. On (re)subscribing, heal: messages may have been lost."""
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await asyncio.wait_for(pubsub.subscribe(self.config.channel, self.config.presence_channel),
                                       2 * self.config.redis_keepalive_seconds)
                self.subscribed.set()
                backoff = 0.1
                await self.fanout.heal()
                async for message in self._listen(pubsub):
                    await self._on_message(_text(message.get("channel")), message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception:
                self.subscribed.clear()
                log.warning("real-time subscriber lost Redis; retrying in %.1f s", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _listen(self, pubsub: Any) -> Any:
        """The subscription's messages, until its link is found dead: Redis sends nothing on an idle
        subscription, so after `redis_keepalive_seconds` of silence a PING goes out, and when not even its
        PONG has come back after as long again, the link is dead (raises ConnectionError: resubscribe, heal)."""
        keepalive = self.config.redis_keepalive_seconds
        heard = time.monotonic()
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=min(1.0, keepalive / 2))
            now = time.monotonic()
            if message is not None:  # anything at all, a PONG included, proves the link
                heard, pinged = now, False
                if message.get("type") == "message":
                    yield message
                continue
            if now - heard >= 2 * keepalive:
                raise ConnectionError(f"no answer from Redis for {now - heard:.1f} s on the real-time subscription")
            if now - heard >= keepalive and not pinged:
                await pubsub.ping()
                pinged = True

    async def _on_message(self, channel: str, data: Any) -> None:
        if channel == self.config.channel:
            self.fanout.announced(decode_announcement(data))
            return
        try:
            message = json.loads(data)
            room = self._room(str(message["workspace_id"]), f"{message['object_type']}/{message['record_id']}")
        except (ValueError, KeyError, TypeError):
            return
        await self.sio.emit("presence", {k: message[k] for k in ("object_type", "record_id", "viewers")},
                            room=room, namespace=NAMESPACE)

    async def _heal_timer(self) -> None:
        await _every(self.config.heal_seconds, self.fanout.heal, "heal")

    async def _recheck_timer(self) -> None:
        await _every(self.config.recheck_seconds, self.recheck, "credential re-check")

    async def recheck(self) -> None:
        """Check every connection's credential again: revoked, ended or removed ones are disconnected."""
        limit = asyncio.Semaphore(8)

        async def check(connection: Connection) -> None:
            async with limit:
                try:
                    connection.scope = await asyncio.to_thread(self._auth.recheck, connection.grant)
                except AppError as revoked:
                    REALTIME_DROPPED.labels(reason="credential").inc()
                    await self._drop(connection.sid, revoked)
                except Exception:  # the database is away: keep the connection, check again next time
                    log.warning("could not re-check a real-time connection", exc_info=True)

        await asyncio.gather(*(check(c) for c in list(self.connections.values())))

    async def _presence_timer(self) -> None:
        await _every(max(1.0, self.config.presence_ttl_seconds / 3), self.refresh_presence, "presence refresh")

    async def refresh_presence(self) -> None:
        """Keep this process's viewers listed; drop the entries whose socket went away without a word (its
        process died) from the records viewed here, and tell the rooms: nobody else would."""
        viewed: dict[str, Viewing] = {}
        for views in list(self._views.values()):
            for viewing in list(views.values()):
                await self._touch(viewing)
                viewed.setdefault(viewing.key, viewing)
        for key, viewing in viewed.items():
            # Only the process that removed an entry announces (ZREMRANGEBYSCORE counts what it removed).
            if await self.redis.zremrangebyscore(key, "-inf", time.time()):
                await self._announce_presence(_workspace_of(key), viewing)


async def _every(seconds: float, work: Callable[[], Awaitable[None]], what: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            log.warning("real-time %s failed", what, exc_info=True)


def _record_of(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        raise ValidationFailed("send {object_type, record_id}")
    object_type, record_id = data.get("object_type"), data.get("record_id")
    if object_type not in PRESENCE_OBJECTS:
        raise ValidationFailed(f"object_type must be one of {', '.join(PRESENCE_OBJECTS)}", errors=[
            {"field": "object_type", "message": f"one of {', '.join(PRESENCE_OBJECTS)}", "code": "enum"}])
    if not is_valid_id(record_id):
        raise NotFound(f"no {object_type} record {str(record_id)[:40]}")
    return str(object_type), str(record_id)


def _workspace_of(key: str) -> str:
    return key.split(":")[2]  # rt:presence:<workspace>:<object type>:<record> (presence_key)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _respond(send: Any, status: int, body: bytes, content_type: str = "application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
