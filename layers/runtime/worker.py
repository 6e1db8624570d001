"""The SQS worker (`crm worker`): long polling, one message at a time per thread, acknowledged one by one.

- Up to ten messages per receive, run one at a time per thread; a message is deleted only after its
  handler returned (the successes of one receive in one DeleteMessageBatch).
- While a handler runs, a heartbeat keeps extending the message's visibility, so a long job is
  not handed to a second worker.
- A failing message is left to the queue (its visibility set to a backoff); the queue's redrive
  policy moves it to the dead-letter queue after maxReceiveCount receives.
- A poison message (unknown handler, malformed payload) goes to the dead-letter queue at once with
  its reason, instead of failing maxReceiveCount times.
- A job that failed because the database could not be reached is left to the queue like any failure,
  and then the worker takes no more work — neither the rest of what it holds (their visibility kept up)
  nor new receives — until the database answers again. An outage so costs the job that met it one
  receive and the others none, instead of walking the whole queue into the dead-letter queue.
- On stop (SIGTERM) each thread finishes the message in hand, gives back the ones it had not started
  (visibility 0, so another worker takes them at once), and exits.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from chalice.app import Chalice

from layers.db.engine import database_answers
from layers.db.errors import Unavailability, unavailability
from layers.observability.metrics import (
    JOB_DURATION,
    JOB_QUEUE_LAG,
    JOBS_DEAD_LETTERED,
    JOBS_FAILED,
    JOBS_IN_FLIGHT,
    JOBS_PROCESSED,
    JOBS_RETRIED,
)
from layers.queue.jobs import PoisonMessage, parse_envelope
from layers.queue.sqs import Queues
from layers.runtime.dispatch import Message, dispatch

log = logging.getLogger(__name__)


@dataclass
class _InFlight:
    receipt_handle: str
    extended_at: float


class Worker:
    def __init__(
        self, app: Chalice, sqs: Any, queues: Queues, *, threads: int = 4, wait_seconds: int = 10,
        visibility_timeout: int = 60, messages_per_receive: int = 10, retry_base_seconds: int = 10,
        database_poll_seconds: float = 1.0,
    ) -> None:
        self.app = app
        self.sqs = sqs
        self.queues = queues
        self.threads = threads
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        self.messages_per_receive = messages_per_receive
        self.retry_base_seconds = retry_base_seconds
        self.database_poll_seconds = database_poll_seconds
        self.stopping = threading.Event()
        self.database_away = threading.Event()  # set by a job that could not reach the database
        self._probing = threading.Lock()
        self._in_flight: dict[str, _InFlight] = {}
        self._lock = threading.Lock()
        self._queue_arn = sqs.get_queue_attributes(
            QueueUrl=queues.jobs_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # ---- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> list[threading.Thread]:
        workers = [threading.Thread(target=self._consume, name=f"worker-{i}", daemon=True)
                   for i in range(self.threads)]
        workers.append(threading.Thread(target=self._heartbeat, name="worker-heartbeat", daemon=True))
        for thread in workers:
            thread.start()
        return workers

    def stop(self) -> None:
        self.stopping.set()

    def run(self, *, stop_timeout: float = 25.0) -> bool:
        """Run until `stop()`; then wait up to `stop_timeout` for messages in hand. True if all finished."""
        threads = self.start()
        self.stopping.wait()
        deadline = time.monotonic() + stop_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        finished = not any(t.is_alive() for t in threads)
        log.info("worker stopped", extra={"finished_in_hand": finished})
        return finished

    # ---- consuming ---------------------------------------------------------------------------------
    def _consume(self) -> None:
        while not self.stopping.is_set():
            self._wait_for_database()
            if self.stopping.is_set():
                break
            try:
                reply = self.sqs.receive_message(
                    QueueUrl=self.queues.jobs_url,
                    MaxNumberOfMessages=self.messages_per_receive,
                    WaitTimeSeconds=self.wait_seconds,
                    VisibilityTimeout=self.visibility_timeout,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception:  # SQS unreachable: wait and poll again, nothing is lost
                log.exception("receive failed")
                self.stopping.wait(2.0)
                continue
            received = reply.get("Messages", [])
            for message in received:  # every message in hand has its visibility kept up, run or not
                self._track(message)
            done: list[dict[str, Any]] = []
            try:
                for index, message in enumerate(received):
                    self._wait_for_database()
                    if self.stopping.is_set():
                        self._give_back(received[index:])
                        break
                    self.process(message, acknowledged=done)
            finally:
                # One DeleteMessageBatch for the messages that succeeded (SQS bills per request); a crash
                # before it only redelivers jobs that already had their effect, which receipts make no-ops.
                self._delete(done)
                for message in received:
                    self._untrack(message)

    def process(self, message: dict[str, Any], *, acknowledged: list[dict[str, Any]] | None = None) -> str:
        """Run one received message; returns what became of it: done, retry, dead_letter.

        A message that succeeded is deleted at once, or appended to `acknowledged` for the caller to
        delete in one batch; a failed one is never deleted."""
        attributes = message.get("Attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
        sent_at_ms = int(attributes.get("SentTimestamp", str(int(time.time() * 1000))))
        if receive_count == 1:
            JOB_QUEUE_LAG.observe(max(0.0, time.time() - sent_at_ms / 1000))
        body = message["Body"]
        handler = _handler_label(body)
        started = time.perf_counter()
        try:
            dispatch(self.app, Message(body=body, message_id=message["MessageId"], receive_count=receive_count,
                                       sent_at_ms=sent_at_ms), queue_arn=self._queue_arn)
        except PoisonMessage as poison:
            self._dead_letter(message, poison.reason)
            JOBS_DEAD_LETTERED.labels(handler, "poison").inc()
            log.error("poison message dead-lettered", extra={"handler": handler, "reason": poison.reason,
                                                             "message_id": message["MessageId"]})
            return "dead_letter"
        except Exception as exc:
            JOBS_FAILED.labels(handler).inc()
            if unavailability(exc) is Unavailability.UNREACHABLE and not self.database_away.is_set():
                self.database_away.set()
                log.warning("database unreachable: taking no more work until it answers", extra={"handler": handler})
            if receive_count >= self.queues.max_receives:
                # The redrive policy moves it on its next receive; say so now, while we know why.
                JOBS_DEAD_LETTERED.labels(handler, "failed").inc()
                log.exception("job failed for the last time; the queue dead-letters it",
                              extra={"handler": handler, "receive_count": receive_count})
            else:
                JOBS_RETRIED.labels(handler).inc()
                log.warning("job failed; the queue retries it", exc_info=exc,
                            extra={"handler": handler, "receive_count": receive_count})
            self._retry_later(message, receive_count)
            return "retry"
        finally:
            JOB_DURATION.labels(handler).observe(time.perf_counter() - started)
        if acknowledged is None:
            self._delete([message])
        else:
            acknowledged.append(message)
        JOBS_PROCESSED.labels(handler).inc()
        return "done"

    def _wait_for_database(self) -> None:
        """While the database is away, hold still; one thread at a time probes it, every poll interval."""
        while self.database_away.is_set() and not self.stopping.is_set():
            if self._probing.acquire(blocking=False):
                try:
                    if self.database_away.is_set() and database_answers():
                        self.database_away.clear()
                        log.info("database answers again: taking work")
                        return
                finally:
                    self._probing.release()
            self.stopping.wait(self.database_poll_seconds)

    # ---- helpers -----------------------------------------------------------------------------------
    def _dead_letter(self, message: dict[str, Any], reason: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.queues.dlq_url,
            MessageBody=message["Body"],
            MessageAttributes={
                "dead_letter_reason": {"DataType": "String", "StringValue": reason[:1000]},
                "source_message_id": {"DataType": "String", "StringValue": message["MessageId"]},
            },
        )
        self.sqs.delete_message(QueueUrl=self.queues.jobs_url, ReceiptHandle=message["ReceiptHandle"])

    def _retry_later(self, message: dict[str, Any], receive_count: int) -> None:
        """Exponential backoff with full jitter before the queue offers it again (SQS caps at 12 h)."""
        delay = random.uniform(0, min(900, self.retry_base_seconds * 2 ** (receive_count - 1)))
        try:
            self.sqs.change_message_visibility(QueueUrl=self.queues.jobs_url,
                                               ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=int(delay))
        except Exception:  # the visibility timeout still returns it; the backoff is a nicety
            log.warning("could not set retry backoff", exc_info=True)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start:start + 10]
            reply = self.sqs.delete_message_batch(QueueUrl=self.queues.jobs_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
            for failed in reply.get("Failed", []):  # rare; the message comes back and its receipt makes it a no-op
                log.warning("could not delete a finished job", extra={"entry": failed})

    def _give_back(self, messages: list[dict[str, Any]]) -> None:
        _release(self.sqs, self.queues.jobs_url, messages)

    def _track(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._in_flight[message["MessageId"]] = _InFlight(message["ReceiptHandle"], time.monotonic())
        JOBS_IN_FLIGHT.inc()

    def _untrack(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._in_flight.pop(message["MessageId"], None)
        JOBS_IN_FLIGHT.dec()

    def _heartbeat(self) -> None:
        """Extend the visibility of messages whose handler is still running, a third before it runs out."""
        interval = max(1.0, self.visibility_timeout / 3)
        while True:
            with self._lock:
                due = [(mid, f) for mid, f in self._in_flight.items()
                       if time.monotonic() - f.extended_at >= interval]
                if self.stopping.is_set() and not self._in_flight:
                    return
            for message_id, flight in due:
                try:
                    self.sqs.change_message_visibility(QueueUrl=self.queues.jobs_url,
                                                       ReceiptHandle=flight.receipt_handle,
                                                       VisibilityTimeout=self.visibility_timeout)
                    flight.extended_at = time.monotonic()
                except Exception:
                    log.warning("could not extend visibility", exc_info=True, extra={"message_id": message_id})
            time.sleep(min(1.0, interval / 4))


def _handler_label(body: str) -> str:
    try:
        return parse_envelope(body).handler
    except PoisonMessage:
        return "unknown"


def dead_letters(sqs: Any, queues: Queues, *, limit: int = 100) -> list[dict[str, Any]]:
    """Peek at dead-lettered jobs: each is hidden while the listing runs, then made visible again."""
    held: list[dict[str, Any]] = []
    try:
        while len(held) < limit:
            reply = sqs.receive_message(QueueUrl=queues.dlq_url, MaxNumberOfMessages=min(10, limit - len(held)),
                                        VisibilityTimeout=30, WaitTimeSeconds=0, AttributeNames=["All"],
                                        MessageAttributeNames=["All"])
            if not reply.get("Messages"):
                break
            held.extend(reply["Messages"])
    finally:
        _release(sqs, queues.dlq_url, held)
    return [_describe(m) for m in held]


def redrive(sqs: Any, queues: Queues, *, message_ids: set[str] | None = None, limit: int = 1000) -> int:
    """Send dead-lettered jobs back to the jobs queue (all, or the named ones); returns how many."""
    moved = 0
    held: list[dict[str, Any]] = []
    try:
        while moved < limit:
            reply = sqs.receive_message(QueueUrl=queues.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                        WaitTimeSeconds=0, MessageAttributeNames=["All"])
            if not reply.get("Messages"):
                break
            for m in reply["Messages"]:
                if (message_ids is not None and m["MessageId"] not in message_ids) or moved >= limit:
                    held.append(m)
                    continue
                sqs.send_message(QueueUrl=queues.jobs_url, MessageBody=m["Body"])
                sqs.delete_message(QueueUrl=queues.dlq_url, ReceiptHandle=m["ReceiptHandle"])
                moved += 1
    finally:
        _release(sqs, queues.dlq_url, held)
    return moved


def _release(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages[start:start + 10])])


def _describe(message: dict[str, Any]) -> dict[str, Any]:
    attributes = message.get("MessageAttributes", {})
    try:
        handler: str | None = json.loads(message["Body"]).get("handler")
    except (ValueError, AttributeError):
        handler = None
    return {
        "message_id": message["MessageId"],
        "handler": handler,
        "reason": attributes.get("dead_letter_reason", {}).get("StringValue", "failed too many times"),
        "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0")),
        "sent_at": message.get("Attributes", {}).get("SentTimestamp"),
        "body": message["Body"][:2000],
    }
