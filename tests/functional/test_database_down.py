"""With the database unreachable, requests answer 503 + Retry-After (never a 500), readiness says which
dependency is down while liveness stays up, and the worker leaves its jobs to the queue and waits for
the database instead of walking them into the dead-letter queue. Here the database is a port where
nothing listens (every connection refused); the frozen and killed MariaDB cases are in
tests/integration/test_database_faults.py."""
from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select

from layers.aws.clients import client
from layers.db.engine import DatabaseLimits, get_engine, make_engine, use_engine
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.queue.sqs import Queues
from layers.runtime.worker import Worker
from tests.support.api import Api, Reply
from tests.support.ids import label_of
from tests.support.jobs_app import JobsApp

Toggle = Callable[[], None]


@pytest.fixture
def outage() -> Iterator[tuple[Toggle, Toggle]]:
    """(start, end): the app's engine points at a port that refuses connections, then at the database again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    working = get_engine()
    refusing = make_engine(f"mysql+pymysql://crm@127.0.0.1:{port}/crm", limits=DatabaseLimits(statement=2, connect=1))
    yield (lambda: use_engine(refusing)), (lambda: use_engine(working))
    use_engine(working)
    refusing.dispose()


def _assert_database_unavailable(reply: Reply) -> None:
    assert reply.status == 503, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.header("Retry-After") == "1"
    problem = reply.json
    assert problem["type"] == "urn:crm:problem:service-unavailable" and problem["status"] == 503
    assert problem["instance"] == reply.header("X-Request-Id")
    assert "127.0.0.1" not in problem["detail"] and "pymysql" not in reply.raw.decode()


def test_reads_and_writes_answer_503_with_retry_after_while_the_database_is_unreachable(
    api: Api, outage: tuple[Toggle, Toggle]
) -> None:
    start, end = outage
    # GIVEN a record, then the database becomes unreachable
    created = api.post("/v1/contacts", {"email": "before@example.com"})
    assert created.status == 201
    start()
    # WHEN a read the record cache cannot answer and a write are made
    read = api.get("/v1/contacts")
    write = api.post("/v1/contacts", {"email": "during@example.com"})
    # THEN both are 503 problem+json with Retry-After, never a 500
    _assert_database_unavailable(read)
    _assert_database_unavailable(write)
    # ... and once the database is back, nothing of the refused write was kept
    end()
    emails = [c["email"] for c in api.get("/v1/contacts").json["data"]]
    assert emails == ["before@example.com"]


def test_a_refused_write_can_be_retried_with_the_same_idempotency_key(api: Api, outage: tuple[Toggle, Toggle]) -> None:
    start, end = outage
    # GIVEN a keyed create refused while the database was unreachable
    start()
    refused = api.post("/v1/contacts", {"email": "keyed@example.com"}, headers={"Idempotency-Key": "k-503"})
    _assert_database_unavailable(refused)
    # WHEN the client retries with the same key after the database is back
    end()
    retried = api.post("/v1/contacts", {"email": "keyed@example.com"}, headers={"Idempotency-Key": "k-503"})
    # THEN the request runs (the 503 was not stored as its answer) and creates the record once
    assert retried.status == 201 and retried.header("Idempotent-Replayed") is None
    assert len(api.get("/v1/contacts").json["data"]) == 1


def test_ready_names_the_database_while_health_stays_up(api: Api, outage: tuple[Toggle, Toggle]) -> None:
    start, end = outage
    # GIVEN the database is unreachable
    start()
    # WHEN the probes are asked
    ready = api.get("/ready", auth=False)
    health = api.get("/health", auth=False)
    # THEN readiness is 503 naming the database (Redis is fine), and liveness touches neither
    assert ready.status == 503
    assert ready.json["checks"] == {"database": False, "redis": True}
    assert (ready.header("Content-Type") or "").startswith("application/problem+json")
    assert health.status == 200
    # ... and readiness recovers with the database
    end()
    assert api.get("/ready", auth=False).json == {"status": "ready", "checks": {"database": True, "redis": True}}


def _send(queues: Queues, handler: str, payload: dict[str, str]) -> None:
    client("sqs").send_message(QueueUrl=queues.jobs_url, MessageBody=json.dumps({"handler": handler,
                                                                               "payload": payload}))


def _events(workspace_id: str) -> list[str]:
    with UnitOfWork(unscoped=True) as uow:
        return [label_of(record_id) for record_id in uow.session.scalars(select(OutboxEvent.record_id).where(
            OutboxEvent.workspace_id == workspace_id, OutboxEvent.event_type == "test.done"))]


def _depth(url: str) -> int:
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_worker_waits_for_the_database_instead_of_dead_lettering_its_jobs(
    aws: Queues, api: Api, outage: tuple[Toggle, Toggle]
) -> None:
    start, end = outage
    # GIVEN three jobs that write to the database, a queue that dead-letters after 3 receives, an
    # immediate retry after a failure, and the database unreachable
    for key in ("a", "b", "c"):
        _send(aws, "test_emit_once", {"key": key, "workspace_id": api.workspace_id})
    worker = Worker(JobsApp().app, client("sqs"), aws, threads=1, wait_seconds=0, visibility_timeout=30,
                    retry_base_seconds=0, database_poll_seconds=0.05)
    start()
    threads = worker.start()
    try:
        # WHEN the worker meets the outage
        deadline = time.monotonic() + 20
        while not worker.database_away.is_set():
            assert time.monotonic() < deadline, "the worker never noticed the database was unreachable"
            time.sleep(0.02)
        # ... and the database comes back
        end()
        deadline = time.monotonic() + 30
        while sorted(_events(api.workspace_id)) != ["a", "b", "c"]:
            assert time.monotonic() < deadline, f"jobs not done: {_events(api.workspace_id)}"
            time.sleep(0.05)
    finally:
        worker.stop()
        for thread in threads:
            thread.join(15)
    # THEN every job had its effect once, and none was dead-lettered or left behind
    assert _depth(aws.dlq_url) == 0 and _depth(aws.jobs_url) == 0
    with UnitOfWork(unscoped=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.workspace_id == api.workspace_id, OutboxEvent.event_type == "test.done")) == 3
