"""The SQS worker against moto: acknowledgement per message, retries into the DLQ, poison messages,
visibility extension, stop (SIGTERM) behaviour, the DLQ commands, at-least-once with effects once, and
the two lanes (the jobs queue served before the bulk queue)."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from layers.aws.clients import client
from layers.db.uow import UnitOfWork
from layers.queue.jobs import enqueue
from layers.queue.lanes import BULK, MAIN, Lane
from layers.queue.outbox import OutboxEvent
from layers.queue.relay import Relay, sqs_publisher
from layers.queue.sqs import Queues, queues, use_queues
from layers.runtime.worker import Worker, dead_letters, redrive
from shared.context import system_scope
from shared.settings import reset_settings
from tests.support.api import Api
from tests.support.jobs_app import JobsApp, every_event_to
from tiers.cli import main


def _send(queues: Queues, handler: str, payload: dict[str, Any] | None = None, *, raw: str | None = None,
          lane: Lane = MAIN) -> str:
    body = raw if raw is not None else json.dumps({"handler": handler, "payload": payload})
    return str(client("sqs").send_message(QueueUrl=queues.lane(lane).url, MessageBody=body)["MessageId"])


def _receive(queues: Queues, url: str | None = None, *, count: int = 10, visibility: int = 30) -> list[dict[str, Any]]:
    reply = client("sqs").receive_message(QueueUrl=url or queues.jobs_url, MaxNumberOfMessages=count,
                                          VisibilityTimeout=visibility, AttributeNames=["All"],
                                          MessageAttributeNames=["All"])
    return list(reply.get("Messages", []))


def _depth(url: str) -> int:
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _wait_until(condition: Callable[[], bool], what: str, *, timeout: float = 60.0) -> None:
    """Poll `condition` until it holds; `timeout` only bounds a failure, it is no expectation of speed."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _worker(jobs_app: JobsApp, queues: Queues, **options: Any) -> Worker:
    options = {"threads": 1, "wait_seconds": 0, "visibility_timeout": 30, "retry_base_seconds": 0, **options}
    return Worker(jobs_app.app, client("sqs"), queues, **options)


def test_each_message_is_deleted_only_after_its_handler_succeeds(aws: Queues) -> None:
    # GIVEN two good jobs and one that fails
    jobs_app = JobsApp()
    for key, fails in (("a", 0), ("b", 1), ("c", 0)):
        _send(aws, "test_work", {"key": key, "fail_times": fails})
    worker = _worker(jobs_app, aws)

    # WHEN the worker processes what it receives
    outcomes = {json.loads(m["Body"])["payload"]["key"]: worker.process(m) for m in _receive(aws)}

    # THEN the good ones are acknowledged one by one and the failing one stays on the queue
    assert outcomes == {"a": "done", "b": "retry", "c": "done"}
    (left,) = _receive(aws)
    assert json.loads(left["Body"])["payload"]["key"] == "b"
    assert left["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_job_failing_its_last_receive_is_given_up_with_its_reason(aws: Queues) -> None:
    # GIVEN a job that always fails, on a queue that allows 3 receives
    jobs_app = JobsApp()
    _send(aws, "test_work", {"key": "doomed", "fail_times": 99})
    worker = _worker(jobs_app, aws)

    # WHEN the worker keeps receiving it
    outcomes = [worker.process(m) for _ in range(5) for m in _receive(aws)]

    # THEN it ran max_receives times; on the last the worker gave up: the handler's capability was told
    # why, and the message moved to the DLQ with its reason, error and receive count
    assert outcomes == ["retry", "retry", "dead_letter"]
    assert jobs_app.runs["doomed"] == aws.max_receives == 3
    assert jobs_app.given_up == [("doomed", "failed 3 times (last error: RuntimeError)")]
    assert _depth(aws.jobs_url) == 0
    (dead,) = dead_letters(client("sqs"), aws)
    assert dead["handler"] == "test_work" and json.loads(dead["body"])["payload"]["key"] == "doomed"
    assert dead["reason"] == "failed 3 times (last error: RuntimeError)"
    assert dead["error"] == "RuntimeError: doomed fails on run 3"
    assert (dead["receive_count"], dead["queue"]) == (3, "crm-jobs")


def test_listing_the_dlq_does_not_count_as_receives(aws: Queues) -> None:
    # GIVEN a job the worker gave up on, and one whose worker died on every receive (the redrive policy
    # moved it after the third, without a reason)
    jobs_app = JobsApp()
    _send(aws, "test_work", {"key": "doomed", "fail_times": 99})
    worker = _worker(jobs_app, aws)
    for _ in range(3):
        for message in _receive(aws):
            worker.process(message)
    _send(aws, "test_work", {"key": "crashes"})
    for _ in range(aws.max_receives):
        assert len(_receive(aws, visibility=0)) == 1  # received, never finished: the worker died
    assert _receive(aws) == []  # the next receive made the queue move it
    assert _depth(aws.dlq_url) == 2

    # WHEN the DLQ is listed three times
    listings = [dead_letters(client("sqs"), aws) for _ in range(3)]

    # THEN each listing shows both with the count they had when they were dead-lettered, and leaves
    # them visible (taken again at once, not after the listing's hold)
    counts = [sorted((json.loads(e["body"])["payload"]["key"], e["receive_count"]) for e in listing)
              for listing in listings]
    assert counts == [[("crashes", 3), ("doomed", 3)]] * 3
    moved = next(e for e in listings[0] if '"crashes"' in e["body"])
    assert "redrive policy" in moved["reason"] and moved["error"] is None and moved["queue"] == "crm-jobs"
    assert len(_receive(aws, aws.dlq_url)) == 2


def test_a_job_that_fails_then_succeeds_runs_until_it_succeeds(aws: Queues) -> None:
    # GIVEN a job that fails twice, with three receives allowed
    jobs_app = JobsApp()
    _send(aws, "test_work", {"key": "flaky", "fail_times": 2})
    worker = _worker(jobs_app, aws)

    # WHEN the worker keeps receiving
    for _ in range(4):
        for message in _receive(aws):
            worker.process(message)

    # THEN the third run succeeds, and nothing is left or dead-lettered
    assert jobs_app.runs["flaky"] == 3 and jobs_app.finished == ["flaky"]
    assert _depth(aws.jobs_url) == 0 and _depth(aws.dlq_url) == 0


def test_poison_messages_go_to_the_dlq_at_once_with_their_reason(aws: Queues) -> None:
    # GIVEN an unknown handler, a malformed payload and a body that is not a job at all
    jobs_app = JobsApp()
    _send(aws, "no_such_handler", {"key": "x"})
    _send(aws, "test_work", {"seconds": "soon"})
    _send(aws, "", raw="not json")
    worker = _worker(jobs_app, aws)

    # WHEN each is received once
    outcomes = [worker.process(m) for m in _receive(aws)]

    # THEN none is retried: each is in the DLQ with why, and no handler ran
    assert outcomes == ["dead_letter"] * 3
    assert _depth(aws.jobs_url) == 0 and not jobs_app.runs
    reasons = sorted(d["reason"] for d in dead_letters(client("sqs"), aws))
    assert reasons[0].startswith("malformed Work: key")
    assert any("unknown handler 'no_such_handler'" in r for r in reasons)
    assert any(r.startswith("not a job envelope") for r in reasons)


class CountingSqs:
    """The SQS client, counting the visibility extensions the worker's heartbeat makes."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.extensions = 0

    def change_message_visibility(self, **kwargs: Any) -> Any:
        reply = self._sqs.change_message_visibility(**kwargs)
        self.extensions += 1
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def test_visibility_is_extended_while_a_long_job_runs(aws: Queues) -> None:
    # GIVEN a job that runs until released, under a visibility timeout of 3 s (extended every second)
    jobs_app = JobsApp()
    _send(aws, "test_work", {"key": "long", "hold": True})
    sqs = CountingSqs(client("sqs"))
    worker = Worker(jobs_app.app, sqs, aws, threads=1, wait_seconds=0, visibility_timeout=3, retry_base_seconds=0)
    threads = worker.start()

    # WHEN another consumer polls while it runs, until the heartbeat extended it three times (the message
    # would have been visible again after the first 3 s without them); then the job finishes
    assert jobs_app.started.wait(10)
    stolen: list[dict[str, Any]] = []

    def extended_three_times() -> bool:
        stolen.extend(_receive(aws, visibility=1))
        return sqs.extensions >= 3

    _wait_until(extended_three_times, "three visibility extensions", timeout=60)
    jobs_app.release.set()
    _wait_until(lambda: "long" in jobs_app.finished and _depth(aws.jobs_url) == 0, "the job to finish")
    worker.stop()
    for thread in threads:
        thread.join(10)

    # THEN nobody else received it, it ran once, and it was deleted
    assert stolen == []
    assert jobs_app.runs["long"] == 1
    assert _depth(aws.jobs_url) == 0


def test_stop_finishes_the_message_in_hand_and_gives_back_the_rest(aws: Queues) -> None:
    # GIVEN a worker that receives three messages at once, the first one running until released
    jobs_app = JobsApp()
    _send(aws, "test_work", {"key": "first", "hold": True})
    for key in ("second", "third"):
        _send(aws, "test_work", {"key": key})
    worker = _worker(jobs_app, aws, messages_per_receive=10, visibility_timeout=60)
    result: list[bool] = []
    runner = threading.Thread(target=lambda: result.append(worker.run(stop_timeout=30)))
    runner.start()

    # WHEN it is told to stop (what SIGTERM does) while the first runs, which then finishes
    assert jobs_app.started.wait(10)
    worker.stop()
    jobs_app.release.set()
    runner.join(30)

    # THEN the first finished and was deleted; the others were given back at once: they can be received
    # now, where their 60 s visibility would hide them had they not been released
    assert not runner.is_alive() and result == [True]
    assert jobs_app.finished == ["first"]
    back = sorted(json.loads(m["Body"])["payload"]["key"] for m in _receive(aws))
    assert back == ["second", "third"]


def test_a_job_delivered_twice_has_its_effect_once(aws: Queues, api: Api) -> None:
    # GIVEN the same job sent twice (at-least-once delivery)
    jobs_app = JobsApp()
    for _ in range(2):
        _send(aws, "test_emit_once", {"key": "k-1", "workspace_id": api.workspace_id})
    worker = _worker(jobs_app, aws)

    # WHEN both copies are processed
    outcomes = [worker.process(m) for m in _receive(aws)]

    # THEN both are acknowledged, and the effect (one event) happened once
    assert outcomes == ["done", "done"]
    with UnitOfWork(unscoped=True) as uow:
        count = uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.workspace_id == api.workspace_id, OutboxEvent.event_type == "test.done"))
    assert count == 1


def test_schedule_messages_run_their_schedule_handler(aws: Queues) -> None:
    # GIVEN what EventBridge Scheduler sends: {"handler": NAME}
    jobs_app = JobsApp()
    client("sqs").send_message(QueueUrl=aws.jobs_url, MessageBody=json.dumps({"handler": "test_tick"}))

    # WHEN the worker processes it
    outcomes = [_worker(jobs_app, aws).process(m) for m in _receive(aws)]

    # THEN the schedule handler ran
    assert outcomes == ["done"] and jobs_app.ticks == 1


def test_dlq_commands_list_and_redrive(aws: Queues) -> None:
    # GIVEN two poison messages in the DLQ
    jobs_app = JobsApp()
    _send(aws, "gone_a", {"key": "a"})
    _send(aws, "gone_b", {"key": "b"})
    worker = _worker(jobs_app, aws)
    for message in _receive(aws):
        worker.process(message)

    # WHEN an operator lists them, redrives one by id, then the rest
    listed = CliRunner().invoke(main, ["dlq", "list"])
    entries = [json.loads(line) for line in listed.output.splitlines()]
    first = next(e for e in entries if e["handler"] == "gone_a")
    one = CliRunner().invoke(main, ["dlq", "redrive", "--id", first["message_id"]])
    remaining = dead_letters(client("sqs"), aws)
    rest = redrive(client("sqs"), aws)

    # THEN the listing names handler, reason and queue, and each redrive moved what it said
    assert listed.exit_code == 0 and {e["handler"] for e in entries} == {"gone_a", "gone_b"}
    assert all("unknown handler" in e["reason"] and e["queue"] == "crm-jobs" for e in entries)
    assert json.loads(one.output) == {"redriven": 1}
    assert [e["handler"] for e in remaining] == ["gone_b"]
    assert rest == 1 and _depth(aws.dlq_url) == 0
    assert sorted(json.loads(m["Body"])["handler"] for m in _receive(aws)) == ["gone_a", "gone_b"]


def test_a_running_worker_acknowledges_the_successes_of_a_batch_and_retries_the_failure(aws: Queues) -> None:
    # GIVEN five jobs received together, one of which fails on its first run
    jobs_app = JobsApp()
    for key in ("a", "b", "c", "d"):
        _send(aws, "test_work", {"key": key})
    _send(aws, "test_work", {"key": "flaky", "fail_times": 1})
    worker = _worker(jobs_app, aws, messages_per_receive=10)
    threads = worker.start()

    # WHEN the worker runs until everything finished
    _wait_until(lambda: len(jobs_app.finished) == 5, "five jobs to finish")
    worker.stop()
    for thread in threads:
        thread.join(15)

    # THEN each ran once except the failure (twice), and nothing is left on the queue or dead-lettered
    assert sorted(jobs_app.finished) == ["a", "b", "c", "d", "flaky"]
    assert jobs_app.runs == {"a": 1, "b": 1, "c": 1, "d": 1, "flaky": 2}
    assert _depth(aws.jobs_url) == 0 and _depth(aws.dlq_url) == 0


# ---- the two lanes ---------------------------------------------------------------------------------------------
def test_the_jobs_queue_is_served_before_a_backlog_of_bulk_work(aws: Queues) -> None:
    # GIVEN 30 bulk jobs, and a worker thread that takes them five at a time; when the 7th finishes, a
    # user's job arrives on the jobs queue
    jobs_app = JobsApp()
    for n in range(30):
        _send(aws, "test_work", {"key": f"bulk-{n}"}, lane=BULK)
    jobs_app.after["bulk-6"] = lambda: _send(aws, "test_work", {"key": "user"})
    worker = _worker(jobs_app, aws, messages_per_receive=5)
    threads = worker.start()

    # WHEN the worker drains both queues
    _wait_until(lambda: len(jobs_app.finished) == 31, "31 jobs to finish")
    worker.stop()
    for thread in threads:
        thread.join(15)

    # THEN the user's job ran as soon as the thread had finished the bulk jobs already in its hand (at most
    # four more), not after the 23 still waiting; each ran in the lane it came from
    order = jobs_app.finished
    assert len(order) == 31
    bulk_between = order.index("user") - order.index("bulk-6") - 1
    assert 0 <= bulk_between <= 4, order
    assert jobs_app.lanes["user"] == MAIN and {jobs_app.lanes[f"bulk-{n}"] for n in range(30)} == {BULK}


def test_what_a_bulk_job_writes_stays_in_the_bulk_lane(aws: Queues, api: Api) -> None:
    # GIVEN a job on the bulk queue that emits an event, and a consumer of every event
    Relay(lambda messages: None).drain()
    jobs_app = JobsApp()
    _send(aws, "test_emit_once", {"key": "k-bulk", "workspace_id": api.workspace_id}, lane=BULK)
    (message,) = _receive(aws, aws.lane(BULK).url)

    # WHEN the worker runs it, and the relay publishes what it wrote
    outcome = _worker(jobs_app, aws).process(message, lane=BULK)
    Relay(sqs_publisher(aws), consumers=every_event_to("test_consume_event")).drain()

    # THEN the event and its consumer's job went by the bulk queue, none by the jobs queue
    assert outcome == "done"
    with UnitOfWork(unscoped=True) as uow:
        lanes = list(uow.session.scalars(select(OutboxEvent.lane).where(
            OutboxEvent.workspace_id == api.workspace_id, OutboxEvent.event_type == "test.done")))
    assert lanes == [BULK]
    assert _receive(aws) == []
    (consumer_job,) = _receive(aws, aws.lane(BULK).url)
    assert json.loads(consumer_job["Body"])["handler"] == "test_consume_event"


def test_bulk_work_is_given_up_into_the_bulk_dlq_and_redriven_back_to_the_bulk_queue(aws: Queues) -> None:
    # GIVEN a poison message on the bulk queue, and one on the jobs queue
    jobs_app = JobsApp()
    _send(aws, "gone_bulk", {"key": "b"}, lane=BULK)
    _send(aws, "gone_main", {"key": "m"})
    worker = _worker(jobs_app, aws)
    for message in _receive(aws, aws.lane(BULK).url):
        worker.process(message, lane=BULK)
    for message in _receive(aws):
        worker.process(message)

    # WHEN an operator lists the DLQs and redrives everything
    listed = {e["handler"]: e for e in dead_letters(client("sqs"), aws)}
    moved = redrive(client("sqs"), aws)

    # THEN the listing says which queue each came from, and each went back to its own queue
    assert (listed["gone_bulk"]["queue"], listed["gone_main"]["queue"]) == ("crm-jobs-bulk", "crm-jobs")
    assert moved == 2 and _depth(aws.dlq_url) == 0 and _depth(aws.lane(BULK).dlq_url) == 0
    assert [json.loads(m["Body"])["handler"] for m in _receive(aws, aws.lane(BULK).url)] == ["gone_bulk"]
    assert [json.loads(m["Body"])["handler"] for m in _receive(aws)] == ["gone_main"]


def test_without_a_bulk_queue_bulk_work_shares_the_jobs_queue(aws: Queues, api: Api,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a deployment whose jobs queue has no bulk queue beside it
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="crm-solo-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName="crm-solo", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "4"})})
    monkeypatch.setenv("JOBS_QUEUE_NAME", "crm-solo")
    reset_settings()
    use_queues(None)
    try:
        # WHEN the queues are looked up, and a bulk job is relayed
        resolved = queues()
        Relay(lambda messages: None).drain()
        with UnitOfWork(system_scope(api.workspace_id)) as uow:
            enqueue(uow, "test_work", {"key": "bulk"}, lane=BULK)
            uow.commit()
        Relay(sqs_publisher(resolved)).drain()
    finally:
        monkeypatch.delenv("JOBS_QUEUE_NAME")
        reset_settings()
        use_queues(aws)

    # THEN there is one lane's queue, and the bulk job waits on it
    assert resolved.bulk_url is None and [q.name for q in resolved.lanes()] == ["crm-solo"]
    assert resolved.lane(BULK) == resolved.main and resolved.max_receives == 4
    (message,) = _receive(aws, resolved.jobs_url)
    assert json.loads(message["Body"])["payload"] == {"key": "bulk"}
