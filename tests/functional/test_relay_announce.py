"""The relay tells the real-time tier about events only once they are committed, and never about a pass
that rolled back; a failing announcement costs the relay nothing."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import fakeredis
import pytest
from sqlalchemy import func, select

from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent, emit
from layers.queue.relay import Outgoing, Relay
from layers.realtime.broadcast import decode_announcement, redis_announcer
from shared.context import system_scope
from tests.support.api import Api


def _published_sequences(workspace_id: str) -> list[int]:
    with UnitOfWork(unscoped=True) as uow:
        return [s for s in uow.session.scalars(select(OutboxEvent.sequence).where(
            OutboxEvent.workspace_id == workspace_id, OutboxEvent.published_at.is_not(None),
            OutboxEvent.kind == "event").order_by(OutboxEvent.sequence)) if s is not None]


def test_events_are_announced_after_the_commit_in_sequence_order(api: Api) -> None:
    # GIVEN nothing pending, then two contacts created; an announcer that looks at the database when called
    Relay(lambda messages: None).drain()
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    api.post("/v1/contacts", {"first_name": "B", "email": "b@example.com"})
    seen: list[tuple[list[dict[str, Any]], list[int]]] = []

    def announce(events: Sequence[dict[str, Any]]) -> None:
        seen.append((list(events), _published_sequences(api.workspace_id)))  # a new session: committed rows only

    # WHEN the relay passes
    Relay(lambda messages: None, announce=announce).drain()

    # THEN one announcement came, once the rows it names were committed as published, in sequence order
    assert len(seen) == 1
    events, committed = seen[0]
    mine = [e for e in events if e["workspace_id"] == api.workspace_id]
    assert [e["type"] for e in mine] == ["contact.created", "contact.created"]
    assert [e["sequence"] for e in mine] == committed[-2:]
    assert set(mine[0]) >= {"id", "sequence", "type", "object_type", "record_id", "occurred_at", "data"}


def test_a_pass_that_rolls_back_announces_nothing(api: Api) -> None:
    # GIVEN a committed event, and a publisher that fails (so the pass rolls back)
    Relay(lambda messages: None).drain()
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    announced: list[Sequence[dict[str, Any]]] = []

    def refuse(messages: Sequence[Outgoing]) -> None:
        raise RuntimeError("SQS refused")

    # WHEN the relay tries
    with pytest.raises(RuntimeError):
        Relay(refuse, announce=announced.append).run_once()

    # THEN nothing was announced, and the next pass announces the event once
    assert announced == []
    Relay(lambda messages: None, announce=announced.append).drain()
    assert [e["type"] for batch in announced for e in batch if e["workspace_id"] == api.workspace_id] == [
        "contact.created"]


def test_a_rolled_back_write_is_never_announced(api: Api) -> None:
    # GIVEN a unit of work that emits an event and then fails
    Relay(lambda messages: None).drain()
    with pytest.raises(RuntimeError), UnitOfWork(system_scope(api.workspace_id)) as uow:
        emit(uow, event_type="contact.created", object_type="contacts", record_id="01JAAAAAAAAAAAAAAAAAAAAAAA",
             data={})
        raise RuntimeError("the request failed after emitting")
    announced: list[Sequence[dict[str, Any]]] = []

    # WHEN the relay passes
    Relay(lambda messages: None, announce=announced.append).drain()

    # THEN nothing was announced
    assert announced == []


def test_a_failing_announcement_still_marks_the_rows_published(api: Api) -> None:
    # GIVEN a committed event and an announcer that raises
    Relay(lambda messages: None).drain()
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})

    def broken(events: Sequence[dict[str, Any]]) -> None:
        raise ConnectionError("redis is gone")

    # WHEN the relay passes
    sent = Relay(lambda messages: None, announce=broken).run_once()

    # THEN the pass counts as done: nothing is left pending, nothing is sent twice
    assert sent == 1
    with UnitOfWork(unscoped=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.workspace_id == api.workspace_id, OutboxEvent.published_at.is_(None))) == 0


def test_the_redis_announcer_publishes_one_message_per_pass(api: Api, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a subscriber on a channel of its own and two committed events
    Relay(lambda messages: None).drain()
    channel = f"test:realtime:{api.workspace_id}"
    subscriber = fake_redis.pubsub()
    subscriber.subscribe(channel)
    assert subscriber.get_message(timeout=1)["type"] == "subscribe"
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    api.post("/v1/companies", {"name": "Acme", "domain": "acme.example"})

    # WHEN the relay passes with the Redis announcer
    Relay(lambda messages: None, announce=redis_announcer(channel)).drain()

    # THEN one message carries both events, readable by the realtime side
    message = subscriber.get_message(timeout=1)
    assert message is not None and message["type"] == "message"
    events = decode_announcement(message["data"])
    assert [e["type"] for e in events] == ["contact.created", "company.created"]
    assert json.loads(message["data"])["events"][0]["sequence"] == events[0]["sequence"]
    assert subscriber.get_message(timeout=0.05) is None
