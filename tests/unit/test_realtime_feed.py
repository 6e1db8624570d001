"""The real-time feed's rules with fakes of its ports: order per workspace, gap fill once per workspace,
no gap and no duplicate at the seam of a resume, bounded queues, and who may see what."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from layers.realtime.feed import AsyncPorts, Connection, Control, Fanout, PreparedEvent
from layers.realtime.ports import Owner, Ports
from layers.realtime.subscriptions import Subscription
from shared.context import Actor, Scope

WORKSPACE = "01JWORKSPACEAAAAAAAAAAAAAA"
OTHER = "01JWORKSPACEBBBBBBBBBBBBBB"


class FakeLog:
    """The event log: committed events per workspace, and every read the feed made."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.reads: list[tuple[str, int, int]] = []
        self.oldest: int | None = None

    def commit(self, workspace_id: str, count: int = 1, *, owner_id: str | None = None,
               event_type: str = "contact.updated") -> list[dict[str, Any]]:
        log = self.events.setdefault(workspace_id, [])
        made = []
        for _ in range(count):
            sequence = len(log) + 1
            event = {"id": f"e{workspace_id[-1]}{sequence}", "sequence": sequence, "type": event_type,
                     "object_type": "contacts", "record_id": f"01JRECORD{sequence:017d}", "workspace_id": workspace_id,
                     "occurred_at": "2026-01-01T00:00:00Z",
                     "data": {"object": {"owner_id": owner_id}} if owner_id else {}}
            log.append(event)
            made.append(event)
        return made

    def events_after(self, workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        self.reads.append((workspace_id, after, limit))
        return [e for e in self.events.get(workspace_id, []) if e["sequence"] > after][:limit]

    def oldest_sequence(self, workspace_id: str) -> int | None:
        return self.oldest if self.oldest is not None else (1 if self.events.get(workspace_id) else None)

    def last_sequences(self, workspace_ids: Sequence[str]) -> dict[str, int]:
        return {w: len(self.events.get(w, [])) for w in workspace_ids}


def _ports(log: FakeLog, owners: dict[str, Owner] | None = None) -> AsyncPorts:
    return AsyncPorts(Ports(event_log=log, owner_of=lambda w, o, r: (owners or {}).get(r, Owner(owned=False)),
                            filter_matches=lambda w, o, r, g: True, check_subscription=lambda s, raw: raw))


def _scope(workspace_id: str = WORKSPACE, visible: frozenset[str] | None = None) -> Scope:
    return Scope(workspace_id=workspace_id, actor=Actor("api_key", "k"), visible_owner_ids=visible)


def _queued(connection: Connection) -> list[int]:
    items = []
    while not connection.queue.empty():
        item = connection.queue.get_nowait()
        items.append(item.sequence if isinstance(item, PreparedEvent) else -1)
    return items


async def _read(connection: Connection, into: list[int]) -> None:
    """A client that keeps reading: takes each queued event as soon as it is there."""
    while True:
        item = await connection.queue.get()
        into.append(item.sequence if isinstance(item, PreparedEvent) else -1)


def test_events_reach_a_connection_in_sequence_order_whatever_order_they_are_announced_in() -> None:
    async def scenario() -> list[int]:
        # GIVEN a connected client and three committed events
        log = FakeLog()
        fanout = Fanout(_ports(log), backfill_limit=1000)
        connection = Connection("a", _scope(), queue_size=100)
        await fanout.attach(connection, None)
        first, second, third = log.commit(WORKSPACE, 3)

        # WHEN they are announced out of order, one twice
        fanout.announced([third])
        fanout.announced([first, second])
        fanout.announced([second])
        await fanout.settle()
        return _queued(connection)

    # THEN the client gets each once, in order
    assert asyncio.run(scenario()) == [1, 2, 3]


def test_a_lost_announcement_is_read_from_the_log_once_per_workspace_not_per_connection() -> None:
    async def scenario() -> tuple[list[list[int]], list[tuple[str, int, int]]]:
        # GIVEN three clients of one workspace
        log = FakeLog()
        fanout = Fanout(_ports(log), backfill_limit=1000)
        connections = [Connection(sid, _scope(), queue_size=100) for sid in "abc"]
        for connection in connections:
            await fanout.attach(connection, None)
        log.reads.clear()

        # WHEN events 1 and 2 are never announced, 3 is
        events = log.commit(WORKSPACE, 3)
        fanout.announced([events[2]])
        await fanout.settle()
        return [_queued(c) for c in connections], log.reads

    queued, reads = asyncio.run(scenario())
    # THEN every client has all three in order, and the log was read once
    assert queued == [[1, 2, 3]] * 3
    assert reads == [(WORKSPACE, 0, 2)]


def test_the_heal_finds_events_no_announcement_brought() -> None:
    async def scenario() -> list[int]:
        # GIVEN a client and two events whose announcement was lost (Redis was away)
        log = FakeLog()
        fanout = Fanout(_ports(log), backfill_limit=1000)
        connection = Connection("a", _scope(), queue_size=100)
        await fanout.attach(connection, None)
        log.commit(WORKSPACE, 2)

        # WHEN the heal timer fires
        await fanout.heal()
        await fanout.settle()
        return _queued(connection)

    # THEN the client has them
    assert asyncio.run(scenario()) == [1, 2]


def test_a_resume_gets_what_it_missed_then_live_events_with_no_gap_and_no_duplicate_at_the_seam() -> None:
    async def scenario() -> list[int]:
        # GIVEN a client that saw up to 2 of 5 committed events, and a log read that is slow: while it runs,
        # events 6 and 7 commit and are announced (and 5, again)
        log = FakeLog()
        fanout = Fanout(_ports(log), backfill_limit=1000)
        log.commit(WORKSPACE, 5)
        keeper = Connection("keeper", _scope(), queue_size=100)  # the feed exists already
        await fanout.attach(keeper, None)
        reads = log.events_after

        def slow_read(workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
            found = reads(workspace_id, after, limit)
            if after == 2:
                fanout_loop.call_soon_threadsafe(announce_more)
            return found

        live: list[dict[str, Any]] = []

        def announce_more() -> None:
            live.extend(log.commit(WORKSPACE, 2))
            fanout.announced([log.events[WORKSPACE][4], *live])

        fanout_loop = asyncio.get_running_loop()
        log.events_after = slow_read  # type: ignore[method-assign]
        connection = Connection("resumer", _scope(), queue_size=100)

        # WHEN it resumes after 2
        await fanout.attach(connection, 2)
        await fanout.settle()
        return _queued(connection)

    # THEN it gets 3..7, each once, in order
    assert asyncio.run(scenario()) == [3, 4, 5, 6, 7]


def test_a_resume_older_than_the_log_keeps_is_told_to_resync_then_gets_live_events() -> None:
    async def scenario() -> tuple[list[Any], Any]:
        # GIVEN a log that no longer keeps sequences before 10
        log = FakeLog()
        log.commit(WORKSPACE, 12)
        log.oldest = 10
        fanout = Fanout(_ports(log), backfill_limit=1000)
        connection = Connection("a", _scope(), queue_size=100)

        # WHEN a client resumes after 3, and then an event commits
        await fanout.attach(connection, 3)
        fanout.announced(log.commit(WORKSPACE))
        await fanout.settle()
        items = []
        while not connection.queue.empty():
            items.append(connection.queue.get_nowait())
        return items, connection.last_sequence

    items, last = asyncio.run(scenario())
    # THEN it is told to resync (where the log stands), then gets the new event only
    assert isinstance(items[0], Control) and items[0].name == "resync_required"
    assert items[0].data["last_sequence"] == 12
    assert [i.sequence for i in items[1:]] == [13] and last == 13


def test_two_workspaces_never_cross() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        # GIVEN a client in each of two workspaces
        log = FakeLog()
        fanout = Fanout(_ports(log), backfill_limit=1000)
        mine = Connection("a", _scope(WORKSPACE), queue_size=100)
        theirs = Connection("b", _scope(OTHER), queue_size=100)
        await fanout.attach(mine, None)
        await fanout.attach(theirs, None)

        # WHEN both workspaces' events come in one announcement
        fanout.announced(log.commit(WORKSPACE, 2) + log.commit(OTHER, 3))
        await fanout.settle()

        def workspaces(connection: Connection) -> list[str]:
            found = []
            while not connection.queue.empty():
                item = connection.queue.get_nowait()
                assert isinstance(item, PreparedEvent)
                found.append(item.body["workspace_id"])
            return found

        return workspaces(mine), workspaces(theirs)

    # THEN each client gets its own workspace's events only
    assert asyncio.run(scenario()) == ([WORKSPACE] * 2, [OTHER] * 3)


def test_a_client_that_makes_no_room_is_dropped_its_queue_freed_and_the_others_get_everything() -> None:
    async def scenario() -> tuple[list[str], int, list[int]]:
        # GIVEN a client with a queue of 3 that reads nothing, and one that keeps reading
        log = FakeLog()
        fanout = Fanout(_ports(log), backfill_limit=1000, slow_client_seconds=0.05)
        dropped: list[str] = []
        slow = Connection("slow", _scope(), queue_size=3, on_overflow=lambda c: dropped.append(c.sid))
        reader = Connection("reader", _scope(), queue_size=3, on_overflow=lambda c: dropped.append(c.sid))
        await fanout.attach(slow, None)
        await fanout.attach(reader, None)
        got: list[int] = []
        reading = asyncio.create_task(_read(reader, got))

        # WHEN ten events come
        fanout.announced(log.commit(WORKSPACE, 10))
        await fanout.settle()
        await asyncio.sleep(0)
        reading.cancel()
        return dropped, slow.queue.qsize(), got

    # THEN the slow one was dropped once and holds nothing; the reader got all ten in order
    assert asyncio.run(scenario()) == (["slow"], 0, list(range(1, 11)))


def test_a_restricted_member_gets_events_of_records_they_may_see_only() -> None:
    async def scenario() -> list[bool]:
        # GIVEN a member who may see records owned by u1 or u2
        log = FakeLog()
        owners = {"01JRECORD00000000000000003": Owner(owned=True, owner_id="u1"),
                  "01JRECORD00000000000000004": Owner(owned=True, exists=False)}
        ports = _ports(log, owners)
        member = Connection("m", _scope(visible=frozenset({"u1", "u2"})), queue_size=10)
        admin = Connection("a", _scope(), queue_size=10)
        owned_by_u2 = log.commit(WORKSPACE, owner_id="u2")[0]  # the owner is in the event
        owned_by_u9 = log.commit(WORKSPACE, owner_id="u9")[0]
        looked_up = log.commit(WORKSPACE)[0]  # record 3: looked up, u1
        gone = log.commit(WORKSPACE)[0]  # record 4: no longer exists
        unowned = {**log.commit(WORKSPACE)[0], "object_type": "pipelines"}

        # WHEN each is decided for the member (and for an admin)
        decided = [await member.wants(PreparedEvent(e, ports, live=True))
                   for e in (owned_by_u2, owned_by_u9, looked_up, gone, unowned)]
        decided.append(await admin.wants(PreparedEvent(owned_by_u9, ports, live=True)))
        return decided

    # THEN the member gets u2's, u1's and the unowned object's; the admin gets everything
    assert asyncio.run(scenario()) == [True, False, True, False, True, True]


def test_subscriptions_take_events_by_type_pattern_and_record() -> None:
    # GIVEN subscriptions to deal events, and to one contact
    deals = Subscription("d", event_types=("deal.*",))
    one = Subscription("c", records=frozenset({"contacts/01JRECORD00000000000000001"}))
    event = {"type": "contact.updated", "object_type": "contacts", "record_id": "01JRECORD00000000000000001"}

    # THEN each takes what it names
    assert not deals.takes(event) and deals.takes({**event, "type": "deal.stage_changed"})
    assert one.takes(event) and not one.takes({**event, "record_id": "01JRECORD00000000000000002"})



def test_a_burst_longer_than_the_queue_reaches_a_client_that_keeps_reading() -> None:
    async def scenario() -> tuple[list[int], list[str]]:
        # GIVEN a client with a queue of 4 that reads all the time
        log = FakeLog()
        fanout = Fanout(_ports(log), backfill_limit=1000)
        dropped: list[str] = []
        reader = Connection("reader", _scope(), queue_size=4, on_overflow=lambda c: dropped.append(c.sid))
        await fanout.attach(reader, None)
        got: list[int] = []
        reading = asyncio.create_task(_read(reader, got))

        # WHEN one announcement brings 40 events (a relay pass after a batch write)
        fanout.announced(log.commit(WORKSPACE, 40))
        await fanout.settle()
        await asyncio.sleep(0)
        reading.cancel()
        return got, dropped

    # THEN it got all 40 in order, and was not taken for a slow client
    assert asyncio.run(scenario()) == (list(range(1, 41)), [])


def test_a_resume_longer_than_the_queue_with_live_events_meanwhile_gets_everything() -> None:
    async def scenario() -> tuple[list[int], list[str]]:
        # GIVEN 20 committed events, and a client with a queue of 4 that reads all the time, resuming after 0
        log = FakeLog()
        log.commit(WORKSPACE, 20)
        fanout = Fanout(_ports(log), backfill_limit=1000)
        keeper = Connection("keeper", _scope(), queue_size=100)  # the feed exists already
        await fanout.attach(keeper, None)
        dropped: list[str] = []
        resumer = Connection("resumer", _scope(), queue_size=4, on_overflow=lambda c: dropped.append(c.sid))
        got: list[int] = []
        reading = asyncio.create_task(_read(resumer, got))
        reads = log.events_after

        def read_then_commit(workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
            found = reads(workspace_id, after, limit)
            if after == 0:  # while the log is read, two more commit and are announced
                loop.call_soon_threadsafe(lambda: fanout.announced(log.commit(WORKSPACE, 2)))
            return found

        loop = asyncio.get_running_loop()
        log.events_after = read_then_commit  # type: ignore[method-assign]

        # WHEN it resumes
        await fanout.attach(resumer, 0)
        await fanout.settle()
        await asyncio.sleep(0)
        reading.cancel()
        return got, dropped

    # THEN it got 1..22 once each, in order, and was not dropped
    assert asyncio.run(scenario()) == (list(range(1, 23)), [])
