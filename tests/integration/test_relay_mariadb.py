"""The outbox relay on MariaDB: FOR UPDATE SKIP LOCKED lets relays run side by side, each workspace's
events keep one gapless order, and a transaction that commits late is never skipped by a reader."""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from functions.events.schemas import EventsQuery
from functions.events.service import list_events
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent, emit
from layers.queue.relay import Outgoing, Relay
from shared.context import system_scope
from shared.ids import new_id
from tests.support.jobs_app import every_event_to


def _emit(workspace_id: str, count: int = 1) -> None:
    with UnitOfWork(system_scope(workspace_id)) as uow:
        for _ in range(count):
            emit(uow, event_type="test.happened", object_type="tests", record_id=new_id(), data={})
        uow.commit()


def _sequences(workspace_id: str) -> list[int | None]:
    with UnitOfWork(unscoped=True) as uow:
        return list(uow.session.scalars(select(OutboxEvent.sequence).where(
            OutboxEvent.workspace_id == workspace_id).order_by(OutboxEvent.sequence)))


def test_a_second_relay_skips_the_workspace_the_first_one_holds() -> None:
    # GIVEN events in two workspaces, and relay A stuck while publishing workspace X's events
    Relay(lambda messages: None).drain()
    x, y = new_id(), new_id()
    _emit(x, 3)
    inside, release = threading.Event(), threading.Event()
    published_by_a: list[str] = []

    def slow_publish(messages: Sequence[Outgoing]) -> None:
        published_by_a.extend(m.body for m in messages)
        inside.set()
        assert release.wait(20)

    relay_a = Relay(slow_publish, consumers=every_event_to("consumer"))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(relay_a.run_once)
        assert inside.wait(10)
        _emit(y, 2)

        # WHEN relay B runs while A holds X
        published_by_b: list[str] = []
        sent_by_b = Relay(lambda messages: published_by_b.extend(m.body for m in messages),
                          consumers=every_event_to("consumer")).run_once()
        release.set()
        sent_by_a = running.result(20)

    # THEN B published Y's events without waiting, A published X's, and nothing went out twice
    assert (sent_by_a, sent_by_b) == (3, 2)
    assert all(f'"workspace_id":"{x}"' in body for body in published_by_a)
    assert all(f'"workspace_id":"{y}"' in body for body in published_by_b)
    assert _sequences(x) == [1, 2, 3] and _sequences(y) == [1, 2]


def test_concurrent_writers_and_relays_publish_each_event_once_in_one_gapless_order() -> None:
    # GIVEN three workspaces written to from many threads while three relays run
    Relay(lambda messages: None).drain()
    workspaces = [new_id() for _ in range(3)]
    published: list[str] = []
    lock = threading.Lock()

    def publish(messages: Sequence[Outgoing]) -> None:
        with lock:
            published.extend(m.body for m in messages)

    stop = threading.Event()
    relays = [threading.Thread(target=Relay(publish, batch_size=7, consumers=every_event_to("c")).run_forever,
                               args=(stop,), kwargs={"idle_seconds": 0.01}) for _ in range(3)]
    for relay in relays:
        relay.start()

    # WHEN 60 transactions of 1-3 events commit concurrently
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: _emit(workspaces[i % 3], 1 + i % 3), range(60)))
    stop.set()
    for relay in relays:
        relay.join(10)
    Relay(publish, consumers=every_event_to("c")).drain()  # what the three had not reached yet

    # THEN every event was published exactly once, and each workspace's sequences are 1..n
    ids = Counter(body.split('"id":"', 1)[1][:26] for body in published)
    assert len(ids) == 120 and set(ids.values()) == {1}
    for workspace_id in workspaces:
        sequences = _sequences(workspace_id)
        assert sequences == list(range(1, len(sequences) + 1))


def test_a_transaction_that_commits_late_is_not_skipped_by_a_reader() -> None:
    # GIVEN a workspace, and a transaction that takes its event id first but commits last
    Relay(lambda messages: None).drain()
    workspace_id = new_id()
    late = UnitOfWork(system_scope(workspace_id))
    late.__enter__()
    emit(late, event_type="test.late", object_type="tests", record_id=new_id(), data={})
    late.session.flush()
    _emit(workspace_id)  # commits first, with a later id
    relay = Relay(lambda messages: None)
    relay.run_once()
    scope = system_scope(workspace_id)
    import json

    first = json.loads(list_events(scope=scope, query=EventsQuery()))

    # WHEN the late transaction commits, the relay runs, and the reader continues from its cursor
    late.commit()
    late.__exit__(None, None, None)
    relay.run_once()
    second = json.loads(list_events(scope=scope, query=EventsQuery(after=first["next_cursor"])))

    # THEN the reader gets the late event after the one it saw (the log is in publish order, not id order)
    assert [e["type"] for e in first["data"]] == ["test.happened"]
    assert [e["type"] for e in second["data"]] == ["test.late"]
