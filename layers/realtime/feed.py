"""How an announced event reaches each client: in order per workspace, with no gap and no duplicate.

Per workspace a realtime process has with connections (`WorkspaceFeed`):
1. `last` starts at the log's last sequence when the first connection arrives; an event is passed on
   only as `last + 1`, so every connection sees the workspace's events in sequence order.
2. An announcement (the relay's Redis message) with sequences past `last + 1` means one was lost or is
   late: the missing ones are read from the event log first, once per workspace, not per connection.
   Sequences at or below `last` are duplicates (a relay pass retried, a late message) and are dropped.
3. A timer compares `last` with the log's last sequence (`heal`): an announcement that never came (Redis
   was down, the relay died after its COMMIT) is read from the log within seconds.
4. A gap too large to replay (past `fill_limit`) is skipped: each connection gets `resync_required`.

Per connection (`Connection`):
5. The feed offers each event; the connection keeps the last sequence offered and ignores any at or
   below it (the dedupe at the seam). Events no subscription could take are not even queued.
6. A resume (`after`) registers the connection first, holding the feed's live events aside, then reads
   the log after `after` page by page, then releases the held events — in one synchronous step, so no live
   event can fall between the log and the live stream; whatever both delivered is dropped by step 5.
7. The queue is bounded. A live event that finds it full waits for room, up to `slow_client_seconds`,
   before the feed passes on the next one: a burst longer than the queue (a relay pass after a batch
   write) reaches a client that keeps reading. A client that makes no room in that time is too slow: it is
   dropped (with a reason, and it can resume), so memory stays flat whatever a client does. Waits for
   several full queues run side by side, so one event costs the workspace at most one such wait. The
   resume waits for room as long as it takes (it reads at the client's pace), while live events wait
   aside, bounded by the queue's size; they are released the same way as live events, waiting for room.
8. The sender task decides per event, when it is sent: the subscriptions (type, record, filter) and the
   connection's visibility (a restricted member sees a record's event only when its owner — from the
   event's `data.object`, else looked up once per event — is one they may see).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from layers.observability.metrics import REALTIME_EMITTED, REALTIME_GAP_FILLS, REALTIME_LATENCY
from layers.realtime.ports import EventLog, Owner, Ports
from layers.realtime.subscriptions import Subscription, Subscriptions
from shared.clock import utcnow
from shared.context import Scope

log = logging.getLogger(__name__)
PAGE = 200
SLOW_CLIENT_SECONDS = 2.0  # how long a live event waits for room in a full queue before its client is dropped


class AsyncPorts:
    """The blocking ports, each call in a worker thread."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    @property
    def log(self) -> EventLog:
        return self.ports.event_log

    async def events_after(self, workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.log.events_after, workspace_id, after, limit)

    async def oldest_sequence(self, workspace_id: str) -> int | None:
        return await asyncio.to_thread(self.log.oldest_sequence, workspace_id)

    async def last_sequences(self, workspace_ids: Sequence[str]) -> dict[str, int]:
        return await asyncio.to_thread(self.log.last_sequences, list(workspace_ids))

    async def owner_of(self, workspace_id: str, object_type: str, record_id: str) -> Owner:
        return await asyncio.to_thread(self.ports.owner_of, workspace_id, object_type, record_id)

    async def filter_matches(self, workspace_id: str, object_type: str, record_id: str,
                             groups: list[dict[str, Any]]) -> bool:
        return await asyncio.to_thread(self.ports.filter_matches, workspace_id, object_type, record_id, groups)


def owner_in_event(body: dict[str, Any]) -> Owner | None:
    """The record's owner as the event carries it (records' events have `data.object.owner_id`)."""
    data = body.get("data")
    record = data.get("object") if isinstance(data, dict) else None
    if isinstance(record, dict) and "owner_id" in record:
        return Owner(owned=True, owner_id=record["owner_id"])
    return None


class PreparedEvent:
    """An event on its way to the connections of one process: lookups it needs are made once, shared."""

    def __init__(self, body: dict[str, Any], ports: AsyncPorts, *, live: bool) -> None:
        self.body = body
        self.sequence = int(body["sequence"])
        self.live = live
        self._ports = ports
        self._owner: asyncio.Future[Owner] | None = None
        self._filters: dict[str, asyncio.Future[bool]] = {}
        # The event as the transport sends it, encoded once for every connection it goes to (the server fills
        # it on first send): encoding per client was most of the cost of a fan-out.
        self.wire: list[Any] | None = None

    async def owner(self) -> Owner:
        if self._owner is None:
            known = owner_in_event(self.body)
            if known is not None:
                self._owner = asyncio.get_running_loop().create_future()
                self._owner.set_result(known)
            else:
                self._owner = asyncio.ensure_future(self._ports.owner_of(
                    str(self.body["workspace_id"]), str(self.body["object_type"]), str(self.body["record_id"])))
        return await asyncio.shield(self._owner)

    async def matches_filter(self, subscription: Subscription) -> bool:
        assert subscription.filter is not None
        key = repr(subscription.filter)
        if key not in self._filters:
            self._filters[key] = asyncio.ensure_future(self._ports.filter_matches(
                str(self.body["workspace_id"]), str(self.body["object_type"]), str(self.body["record_id"]),
                subscription.filter))
        return await asyncio.shield(self._filters[key])

    def age_seconds(self) -> float | None:
        try:
            occurred = datetime.fromisoformat(str(self.body.get("occurred_at")))
        except ValueError:
            return None
        return max(0.0, (utcnow() - occurred).total_seconds()) if occurred.tzinfo else None


@dataclass(frozen=True)
class Control:
    """A message for the client that keeps its place in the connection's order (`resync_required`)."""

    name: str
    data: dict[str, Any]


Queued = PreparedEvent | Control


class Connection:
    def __init__(self, sid: str, scope: Scope, *, queue_size: int, grant: Any = None,
                 on_overflow: Callable[[Connection], None] | None = None) -> None:
        self.sid = sid
        self.scope = scope
        self.grant = grant  # what it authenticated with, checked again on a timer
        self.workspace_id = scope.workspace_id
        self.subscriptions = Subscriptions()
        self.queue: asyncio.Queue[Queued] = asyncio.Queue(queue_size)
        self.last_sequence = 0  # the last sequence offered to this connection (never offered again)
        self.catching_up = False
        self.closed = False
        self._gone = asyncio.Event()  # set with `closed`: a wait for room ends at once
        self._held: list[PreparedEvent] = []
        self._on_overflow = on_overflow

    # ---- the feed's side ----------------------------------------------------------------------------
    def offer(self, event: PreparedEvent) -> bool:
        """A live event, in sequence order; never waits. False: the queue has no room for it now, and the
        feed must `wait_for_room` before it passes on the next event."""
        if self.closed or event.sequence <= self.last_sequence:
            return True
        if self.catching_up:
            if len(self._held) >= self.queue.maxsize:
                self._overflow()
            else:
                self._held.append(event)
            return True
        return self._accept(event)

    async def wait_for_room(self, event: PreparedEvent, seconds: float) -> None:
        """Queue an event `offer` had no room for once the sender makes some; a client that makes none
        within `seconds` cannot keep up, and is dropped."""
        put = asyncio.ensure_future(self.queue.put(event))
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({put, gone}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            placed = put.done() and not put.cancelled()
            put.cancel()
        if placed:
            self.last_sequence = max(self.last_sequence, event.sequence)
        else:
            self._overflow()

    def control(self, message: Control, *, skip_to: int | None = None) -> None:
        """Queue a message in order; `skip_to` marks the sequences before it as passed."""
        if skip_to is not None:
            self.last_sequence = max(self.last_sequence, skip_to)
        self._put(message)

    async def backfill(self, event: PreparedEvent) -> None:
        """An event read from the log for a resume: waits for room (the log can wait, live events cannot)."""
        if self.closed or event.sequence <= self.last_sequence:
            return
        self.last_sequence = event.sequence
        if self.subscriptions.taking(event.body):
            await self.queue.put(event)

    async def caught_up(self, wait_seconds: float) -> None:
        """Switch from the log to the live stream: the held events first, in order, each waiting for room as
        a live event does (more may be held meanwhile); the switch itself is synchronous, so no live event
        can come between the last held one and the stream."""
        while self._held and not self.closed:
            event = self._held.pop(0)
            if not self._accept(event):
                await self.wait_for_room(event, wait_seconds)
        self._held.clear()
        self.catching_up = False

    def close(self) -> None:
        self.closed = True
        self._gone.set()

    def _accept(self, event: PreparedEvent) -> bool:
        if self.closed or event.sequence <= self.last_sequence:
            return True
        if not self.subscriptions.taking(event.body):
            self.last_sequence = event.sequence
            return True
        if self.queue.full():
            return False
        self.last_sequence = event.sequence
        self.queue.put_nowait(event)
        return True

    def _put(self, item: Queued) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._overflow()

    def _overflow(self) -> None:
        if self.closed:
            return
        self.close()
        self._held.clear()
        while not self.queue.empty():  # what it could not take is freed now, not when it goes
            self.queue.get_nowait()
        if self._on_overflow is not None:
            self._on_overflow(self)

    # ---- the sender's side --------------------------------------------------------------------------
    async def wants(self, event: PreparedEvent) -> bool:
        taking = self.subscriptions.taking(event.body)
        if not taking:
            return False
        visible = self.scope.visible_owner_ids
        if visible is not None:
            owner = await event.owner()
            if owner.owned and (not owner.exists or owner.owner_id not in visible):
                return False
        for subscription in taking:
            if subscription.filter is None or await event.matches_filter(subscription):
                return True
        return False


Emit = Callable[[str, dict[str, Any], "PreparedEvent | None"], Awaitable[None]]  # name, data, the event


async def send_loop(connection: Connection, emit: Emit, writable: Callable[[], Awaitable[None]]) -> None:
    """The connection's sender: one message at a time, waiting while the transport still holds earlier ones."""
    while not connection.closed:
        item = await connection.queue.get()
        if isinstance(item, Control):
            await emit(item.name, item.data, None)
            continue
        try:
            wanted = await connection.wants(item)
        except Exception:  # a lookup failed: the event is withheld (never shown to whom it may not concern)
            log.exception("could not decide event %s for a connection", item.body.get("id"))
            wanted = False
        if not wanted:
            continue
        await emit("event", item.body, item)
        REALTIME_EMITTED.labels(source="live" if item.live else "backfill").inc()
        if item.live:
            age = item.age_seconds()
            if age is not None:
                REALTIME_LATENCY.observe(age)
        await writable()


class WorkspaceFeed:
    def __init__(self, workspace_id: str, ports: AsyncPorts, *, fill_limit: int,
                 slow_client_seconds: float = SLOW_CLIENT_SECONDS) -> None:
        self.workspace_id = workspace_id
        self.slow_client_seconds = slow_client_seconds
        self.last: int | None = None
        self.connections: dict[str, Connection] = {}
        self._ports = ports
        self._fill_limit = fill_limit
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self.last is None:
                self.last = (await self._ports.last_sequences([self.workspace_id])).get(self.workspace_id, 0)

    async def announced(self, events: Sequence[dict[str, Any]]) -> None:
        async with self._lock:
            for body in sorted(events, key=lambda e: int(e["sequence"])):
                if self.last is None:
                    return
                sequence = int(body["sequence"])
                if sequence <= self.last:
                    continue
                if sequence > self.last + 1:
                    await self._fill(sequence - 1)
                if sequence == self.last + 1:
                    await self._pass_on(body)

    async def heal(self, newest: int | None = None) -> None:
        async with self._lock:
            if self.last is None:
                return
            if newest is None:
                newest = (await self._ports.last_sequences([self.workspace_id])).get(self.workspace_id, 0)
            if newest > self.last:
                await self._fill(newest)

    async def _fill(self, upto: int) -> None:
        assert self.last is not None
        if upto - self.last > self._fill_limit:
            self._skip(upto, "this process fell too far behind the event log")
            return
        while self.last < upto:
            rows = await self._ports.events_after(self.workspace_id, self.last, min(PAGE, upto - self.last))
            passed = 0
            for body in rows:
                if int(body["sequence"]) == self.last + 1:
                    await self._pass_on(body)
                    passed += 1
            REALTIME_GAP_FILLS.inc(passed)
            if not passed:  # the log no longer has them (retention): clients must re-read
                self._skip(upto, "events are missing from the event log")
                return

    async def _pass_on(self, body: dict[str, Any]) -> None:
        event = PreparedEvent(body, self._ports, live=True)
        self.last = event.sequence
        full = [c for c in list(self.connections.values()) if not c.offer(event)]
        if full:  # side by side: the event costs the workspace one wait, however many clients lag
            await asyncio.gather(*(c.wait_for_room(event, self.slow_client_seconds) for c in full))

    def _skip(self, upto: int, reason: str) -> None:
        log.warning("workspace %s: skipping to sequence %d (%s)", self.workspace_id, upto, reason)
        self.last = upto
        for connection in list(self.connections.values()):
            connection.control(resync_required(reason, upto), skip_to=upto)


def resync_required(reason: str, last_sequence: int) -> Control:
    return Control("resync_required", {"reason": reason, "last_sequence": last_sequence})


class Fanout:
    """Every feed and connection of this process; the subscriber, the heal timer and the server use it."""

    def __init__(self, ports: AsyncPorts, *, backfill_limit: int,
                 slow_client_seconds: float = SLOW_CLIENT_SECONDS) -> None:
        self.ports = ports
        self.slow_client_seconds = slow_client_seconds
        self.feeds: dict[str, WorkspaceFeed] = {}
        self.connections: dict[str, Connection] = {}
        self._backfill_limit = backfill_limit
        self._tasks: set[asyncio.Task[None]] = set()

    async def attach(self, connection: Connection, after: int | None) -> None:
        """Register a connection; with `after`, first send what it missed from the log (steps 5–6)."""
        workspace_id = connection.workspace_id
        while True:
            feed = self.feeds.get(workspace_id)
            if feed is None:
                feed = self.feeds[workspace_id] = WorkspaceFeed(
                    workspace_id, self.ports, fill_limit=self._backfill_limit,
                    slow_client_seconds=self.slow_client_seconds)
            await feed.start()
            if self.feeds.get(workspace_id) is feed:  # not dropped by its last connection leaving meanwhile
                break
        assert feed.last is not None
        # No await from here until registered: `feed.last` is exactly where the live stream starts.
        connection.catching_up = after is not None
        connection.last_sequence = feed.last if after is None else after
        feed.connections[connection.sid] = connection
        self.connections[connection.sid] = connection
        if after is None:
            return
        newest = (await self.ports.last_sequences([workspace_id])).get(workspace_id, 0)
        oldest = await self.ports.oldest_sequence(workspace_id)
        problem = None
        if after > newest:
            problem = "this position is ahead of the workspace's event log (a cursor of another workspace?)"
        elif oldest is not None and after < oldest - 1:
            problem = "events after this position are no longer kept; re-read through the REST API"
        elif newest - after > self._backfill_limit:
            problem = f"more than {self._backfill_limit} events were missed; re-read through the REST API"
        if problem is not None:
            skip_to = max(newest, feed.last)
            connection.control(resync_required(problem, skip_to), skip_to=skip_to)
            await connection.caught_up(self.slow_client_seconds)
            return
        while not connection.closed:
            rows = await self.ports.events_after(workspace_id, connection.last_sequence, PAGE)
            for body in rows:
                await connection.backfill(PreparedEvent(body, self.ports, live=False))
            if len(rows) < PAGE:
                break
        await connection.caught_up(self.slow_client_seconds)

    def detach(self, sid: str) -> Connection | None:
        connection = self.connections.pop(sid, None)
        if connection is None:
            return None
        connection.close()
        feed = self.feeds.get(connection.workspace_id)
        if feed is not None:
            feed.connections.pop(sid, None)
            if not feed.connections:
                del self.feeds[connection.workspace_id]
        return connection

    def announced(self, events: Sequence[dict[str, Any]]) -> None:
        """Hand an announcement's events to their workspaces' feeds (those with connections here)."""
        by_workspace: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            if event["workspace_id"] in self.feeds:
                by_workspace.setdefault(event["workspace_id"], []).append(event)
        for workspace_id, batch in by_workspace.items():
            self._spawn(self.feeds[workspace_id].announced(batch))

    async def heal(self) -> None:
        """Compare every feed with the log: read what no announcement brought (step 3)."""
        if not self.feeds:
            return
        newest = await self.ports.last_sequences(list(self.feeds))
        for workspace_id, feed in list(self.feeds.items()):
            if feed.last is not None and newest.get(workspace_id, 0) > feed.last:
                self._spawn(feed.heal(newest[workspace_id]))

    async def settle(self) -> None:
        """Wait for the announcements and heals in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("real-time feed step failed", exc_info=task.exception())
