"""The outbox relay: only committed rows, marked sent only after SQS took them, and a relay killed
between publishing and marking loses nothing and duplicates nothing a consumer acts on twice."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from layers.aws.clients import client
from layers.db.uow import UnitOfWork
from layers.queue.jobs import enqueue
from layers.queue.lanes import BULK
from layers.queue.outbox import OutboxEvent
from layers.queue.relay import Outgoing, Relay, sqs_publisher
from layers.queue.sqs import Queues
from layers.runtime.worker import Worker
from shared.clock import isoformat, utcnow
from shared.context import system_scope
from shared.ids import new_id
from tests.support.api import Api
from tests.support.ids import label_of, named_id
from tests.support.jobs_app import JobsApp, every_event_to


class RelayKilled(Exception):
    """Stands for the process dying after SQS accepted the messages, before the COMMIT."""


def _drain_queue(queues: Queues) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        reply = client("sqs").receive_message(QueueUrl=queues.jobs_url, MaxNumberOfMessages=10,
                                              VisibilityTimeout=60, AttributeNames=["All"])
        if not reply.get("Messages"):
            return messages
        messages += reply["Messages"]


def _unpublished(workspace_id: str) -> int:
    with UnitOfWork(unscoped=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.workspace_id == workspace_id, OutboxEvent.published_at.is_(None))) or 0)


def _consumed(workspace_id: str) -> list[str]:
    with UnitOfWork(unscoped=True) as uow:
        return list(uow.session.scalars(select(OutboxEvent.record_id).where(
            OutboxEvent.workspace_id == workspace_id, OutboxEvent.event_type == "test.consumed")))


def test_committed_rows_are_published_once_and_marked(aws: Queues, api: Api) -> None:
    # GIVEN nothing pending from other tests, then two contacts created
    Relay(lambda bodies: None).drain()
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    api.post("/v1/contacts", {"first_name": "B", "email": "b@example.com"})
    relay = Relay(sqs_publisher(aws), consumers=every_event_to("test_consume_event"))

    # WHEN the relay runs twice
    first, second = relay.run_once(), relay.run_once()

    # THEN both events went out once, addressed to the consumer, with their sequences, and are marked
    bodies = [json.loads(m["Body"]) for m in _drain_queue(aws)]
    assert (first, second) == (2, 0) and _unpublished(api.workspace_id) == 0
    assert [b["handler"] for b in bodies] == ["test_consume_event"] * 2
    assert [b["payload"]["type"] for b in bodies] == ["contact.created", "contact.created"]
    assert bodies[1]["payload"]["sequence"] == bodies[0]["payload"]["sequence"] + 1
    assert all(b["job_id"] == f"{b['payload']['id']}:test_consume_event" for b in bodies)


def test_a_relay_killed_after_publishing_loses_nothing_and_consumers_act_once(aws: Queues, api: Api) -> None:
    # GIVEN a committed event, and a relay that dies right after SQS accepted its messages
    Relay(lambda bodies: None).drain()
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    publish = sqs_publisher(aws)

    def publish_then_die(messages: Sequence[Outgoing]) -> None:
        publish(messages)
        raise RelayKilled

    with pytest.raises(RelayKilled):
        Relay(publish_then_die, consumers=every_event_to("test_consume_event")).run_once()
    still_pending = _unpublished(api.workspace_id)

    # WHEN a healthy relay runs next, and the worker processes everything on the queue
    Relay(publish, consumers=every_event_to("test_consume_event")).run_once()
    pending_after = _unpublished(api.workspace_id)
    messages = _drain_queue(aws)
    worker = Worker(JobsApp().app, client("sqs"), aws, threads=1, wait_seconds=0)
    outcomes = [worker.process(m) for m in messages]

    # THEN the row was not marked by the dead relay, SQS got it twice, and the consumer acted once
    assert still_pending == 1 and pending_after == 0
    assert len(messages) == 2 and len({json.loads(m["Body"])["job_id"] for m in messages}) == 1
    assert outcomes == ["done", "done"]
    assert len(_consumed(api.workspace_id)) == 1


def test_nothing_is_marked_when_sqs_refuses(aws: Queues, api: Api) -> None:
    # GIVEN a committed job and a queue URL that does not exist
    Relay(lambda bodies: None).drain()
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        enqueue(uow, "test_work", {"key": "x"})
        uow.commit()
    broken = Relay(sqs_publisher(dataclasses.replace(aws, jobs_url=aws.jobs_url + "-missing")))

    # WHEN the relay tries to publish
    with pytest.raises(Exception):  # noqa: B017 - whatever botocore raises, the point is what is left
        broken.run_once()

    # THEN the job is still pending for the next pass
    assert _unpublished(api.workspace_id) == 1
    Relay(sqs_publisher(aws)).run_once()
    assert [json.loads(m["Body"])["handler"] for m in _drain_queue(aws)] == ["test_work"]


def test_a_job_of_a_rolled_back_unit_of_work_is_never_sent(aws: Queues, api: Api) -> None:
    # GIVEN a unit of work that enqueues a job and then fails
    Relay(lambda bodies: None).drain()
    with pytest.raises(RuntimeError), UnitOfWork(system_scope(api.workspace_id)) as uow:
        enqueue(uow, "test_work", {"key": "x"})
        raise RuntimeError("the request failed after enqueueing")

    # WHEN the relay runs
    sent = Relay(sqs_publisher(aws)).run_once()

    # THEN nothing was published
    assert sent == 0 and _drain_queue(aws) == []


def test_events_go_only_to_consumers_with_something_to_do_in_the_workspace(api: Api, receiver_url: str) -> None:
    # GIVEN a workspace with neither webhooks nor rules
    Relay(lambda bodies: None).drain()
    published: list[Outgoing] = []
    relay = Relay(published.extend)
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})

    # WHEN its event is relayed, then a webhook is added and another event relayed
    relay.run_once()
    without = list(published)
    published.clear()
    api.post("/v1/webhooks", {"url": receiver_url, "event_types": ["contact.created"]})
    api.post("/v1/contacts", {"first_name": "B", "email": "b@example.com"})
    relay.run_once()

    # THEN the first event cost no job (it is still numbered for the event log), the second one job: the fan-out
    assert without == []
    handlers = [json.loads(message.body)["handler"] for message in published]
    assert handlers == ["webhooks_fanout"]
    assert [e["type"] for e in api.get("/v1/events?types=contact.*").json["data"]] == ["contact.created"] * 2


def test_events_go_only_to_consumers_subscribed_to_their_type(api: Api, receiver_url: str) -> None:
    # GIVEN a workspace whose only webhook wants deal events
    Relay(lambda messages: None).drain()
    published: list[Outgoing] = []
    relay = Relay(published.extend)
    api.post("/v1/webhooks", {"url": receiver_url, "event_types": ["deal.*"]})

    # WHEN a contact and then a deal are created and their events relayed
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    relay.run_once()
    after_contact = [json.loads(m.body)["handler"] for m in published]
    published.clear()
    api.post("/v1/deals", {"name": "Renewal"})
    relay.run_once()

    # THEN the contact's event cost no fan-out job (it is still in the event log); the deal's did
    assert after_contact == []
    fanned = [(json.loads(m.body)["handler"], json.loads(m.body)["payload"]["type"]) for m in published]
    assert fanned == [("webhooks_fanout", "deal.created"), ("webhooks_fanout", "deal.stage_changed")]
    assert [e["type"] for e in api.get("/v1/events?types=contact.*").json["data"]] == ["contact.created"]


def test_automations_get_only_the_event_types_their_rules_triggers_listen_to(api: Api, other_api: Api) -> None:
    # GIVEN a workspace whose only rule is on deals entering a stage, and another with a contact rule
    Relay(lambda messages: None).drain()
    published: list[Outgoing] = []
    relay = Relay(published.extend)
    rule = {"name": "R", "actions": [{"type": "add_tag", "tag": "x"}]}
    stage = api.get("/v1/pipelines").json["data"][0]["stages"][1]["id"]
    assert api.post("/v1/automations", {**rule, "object_type": "deals", "trigger": {
        "type": "deal_stage_changed", "to_stage_id": stage}}).status == 201
    theirs = other_api.post("/v1/automations", {**rule, "object_type": "contacts",
                                                "trigger": {"type": "record_updated"}})
    assert theirs.status == 201

    def evaluated() -> list[tuple[str, str]]:
        relay.run_once()
        found = [(json.loads(m.body)["payload"]["workspace_id"], json.loads(m.body)["payload"]["type"])
                 for m in published if json.loads(m.body)["handler"] == "automations_evaluate"]
        published.clear()
        return found

    # WHEN contacts are created and updated in both, and a deal in the first
    for workspace in (api, other_api):
        person = workspace.post("/v1/contacts", {"first_name": "A"}).json
        workspace.patch(f"/v1/contacts/{person['id']}", {"last_name": "B"})
    contact_jobs = evaluated()
    api.post("/v1/deals", {"name": "Renewal"})
    deal_jobs = evaluated()

    # THEN the stage rule's workspace sent automations no contact event, the contact rule's only the updates
    # (its rule does not listen to creations), and the deal sent only its stage change, not deal.created
    assert contact_jobs == [(other_api.workspace_id, "contact.updated")]
    assert deal_jobs == [(api.workspace_id, "deal.stage_changed")]

    # WHEN the first workspace adds a contact rule, the other pauses its rule, and both create and update contacts
    assert api.post("/v1/automations", {**rule, "object_type": "contacts",
                                        "trigger": {"type": "record_created"}}).status == 201
    assert other_api.post(f"/v1/automations/{theirs.json['id']}/pause").status == 200
    for workspace in (api, other_api):
        person = workspace.post("/v1/contacts", {"first_name": "C"}).json
        workspace.patch(f"/v1/contacts/{person['id']}", {"last_name": "D"})

    # THEN the first workspace's contact.created now goes to automations; nothing of the paused rule's does
    assert evaluated() == [(api.workspace_id, "contact.created")]


def test_a_delayed_job_is_published_with_its_delay_and_a_bulk_job_to_the_bulk_queue(aws: Queues, api: Api) -> None:
    # GIVEN a job enqueued with the longest delay, and one in the bulk lane
    Relay(lambda messages: None).drain()
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        enqueue(uow, "test_work", {"key": "later"}, delay_seconds=900)
        enqueue(uow, "test_work", {"key": "bulk"}, lane=BULK)
        uow.commit()

    # WHEN the relay publishes them
    sent = Relay(sqs_publisher(aws)).run_once()

    # THEN SQS holds the first back (nothing to receive yet) and the second waits on the bulk queue
    attributes = client("sqs").get_queue_attributes(QueueUrl=aws.jobs_url, AttributeNames=["All"])["Attributes"]
    assert sent == 2 and attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert _drain_queue(aws) == []
    bulk = client("sqs").receive_message(QueueUrl=aws.lane(BULK).url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["payload"]["key"] for m in bulk] == ["bulk"]


def test_a_backlog_of_bulk_events_does_not_hold_back_a_job_or_another_workspace(api: Api, other_api: Api) -> None:
    # GIVEN a workspace with 12 bulk events waiting (an import's) and then a job of the main lane (an export),
    # another workspace with one event, and a relay publishing 4 rows a pass
    Relay(lambda messages: None).drain()
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        for n in range(12):
            uow.session.add(_event(api.workspace_id, named_id(f"bulk-{n}"), lane=BULK))
        uow.commit()
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        enqueue(uow, "exports_run", {"key": "user"})
        uow.commit()
    with UnitOfWork(system_scope(other_api.workspace_id)) as uow:
        uow.session.add(_event(other_api.workspace_id, named_id("other")))
        uow.commit()
    published: list[Outgoing] = []
    relay = Relay(published.extend, batch_size=4, consumers=every_event_to("test_consume_event"))

    # WHEN the relay makes one pass
    relay.run_once()

    # THEN the job went first, the other workspace's event went too, and the backlog's first events in order
    bodies = [json.loads(m.body) for m in published]
    assert bodies[0]["handler"] == "exports_run"
    records = [label_of(b["payload"]["record_id"]) for b in bodies[1:]]
    assert "other" in records
    backlog = [r for r in records if r.startswith("bulk-")]
    assert backlog == [f"bulk-{n}" for n in range(len(backlog))] and 0 < len(backlog) < 12
    assert relay.drain() > 0
    logged = _events_of(api)
    assert [label_of(e["record_id"]) for e in logged] == [f"bulk-{n}" for n in range(12)]
    assert [e["sequence"] for e in logged] == list(range(logged[0]["sequence"], logged[0]["sequence"] + 12))


def _event(workspace_id: str, record_id: str, *, lane: str = "main") -> OutboxEvent:
    now = utcnow()
    return OutboxEvent(id=new_id(), kind="event", workspace_id=workspace_id, event_type="test.happened",
                       object_type="tests", record_id=record_id, occurred_at=now, lane=lane,
                       payload={"type": "test.happened", "occurred_at": isoformat(now), "data": {}})


def _events_of(api: Api) -> list[dict[str, Any]]:
    return list(api.get("/v1/events?types=test.*&limit=100").json["data"])


def test_a_delay_longer_than_sqs_allows_is_refused_when_enqueued(api: Api) -> None:
    # GIVEN a unit of work
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        # WHEN a job asks for more than SQS's 15 minutes
        # THEN it is refused before anything is written
        with pytest.raises(ValueError, match="delay_seconds"):
            enqueue(uow, "test_work", {"key": "x"}, delay_seconds=901)


@pytest.fixture
def receiver_url() -> str:
    return "http://127.0.0.1:9/never-called"  # registration only: no delivery is run in this test
