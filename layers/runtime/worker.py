"""The SQS worker (`crm worker`): two lanes, long polling, one message at a time per thread, acknowledged one by one.

- Two queues (layers/queue/lanes.py): the jobs queue, for the work people wait for, and the bulk queue,
  for imports and the events and jobs they cause. The jobs queue has priority: a thread asks it first
  before every receive and takes bulk work only when it gave nothing, and a share of the threads (a
  quarter, at least one when there are two or more) never takes bulk work. So a job on the jobs queue
  waits at most for the messages a thread already holds, never behind a backlog of bulk work.
- Up to ten messages per receive, run one at a time per thread; a message is deleted only after its
  handler returned (the successes of one receive in one DeleteMessageBatch).
- While a handler runs, a heartbeat keeps extending the message's visibility, so a long job is
  not handed to a second worker.
- A failing message is left to the queue (its visibility set to a backoff). On its last allowed
  receive (maxReceiveCount of its queue's redrive policy) the worker gives up on it: it tells the job's
  capability (`@on_dead_letter`: an export or import is marked failed with the reason), then moves it
  to the queue's dead-letter queue with why (reason, error, receive count, source queue). The redrive
  policy stays as the safety net for a message whose worker died on every try (a crash loop): it
  arrives in the DLQ without a reason, and the stalled-job sweeps of imports and exports fail its row.
- A poison message (unknown handler, malformed payload) is given up at once in the same way, instead
  of failing maxReceiveCount times.
- A job that failed because the database could not be reached is left to the queue (never given up on
  for that), and then the worker takes no more work — neither the rest of what it holds (their
  visibility kept up) nor new receives — until the database answers again. An outage so costs the job
  that met it one receive and the others none, instead of walking the whole queue into the DLQ.
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
from layers.queue.jobs import PoisonMessage, gave_up, parse_envelope
from layers.queue.lanes import BULK, MAIN, Lane
from layers.queue.sqs import LaneQueue, Queues
from layers.runtime.dispatch import Message, dispatch

log = logging.getLogger(__name__)

# Message attributes the worker writes on what it dead-letters (`crm dlq list` shows them).
REASON, ERROR, RECEIVE_COUNT, SOURCE_QUEUE = "dead_letter_reason", "dead_letter_error", "receive_count", "source_queue"


@dataclass
class _InFlight:
    queue_url: str
    receipt_handle: str
    extended_at: float


Poll = tuple[LaneQueue, int]  # a queue and how long a receive on it may wait


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
        self._queue_arns = {
            q.lane: sqs.get_queue_attributes(QueueUrl=q.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for q in queues.lanes()}

    # ---- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> list[threading.Thread]:
        workers = [threading.Thread(target=self._consume, args=(polls,), name=f"worker-{i}", daemon=True)
                   for i, polls in enumerate(self.poll_plans())]
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

    def poll_plans(self) -> list[list[Poll]]:
        """Per thread, the receives it tries in order until one gives messages (then it starts over).

        Only the last may wait (long polling): a thread that also serves the bulk lane asks the jobs
        queue without waiting first. Reserved threads serve the jobs queue alone; when every thread
        serves both, an idle thread waits on the jobs queue, so a job there starts at once."""
        main = self.queues.main
        if not self.queues.has_bulk:
            return [[(main, self.wait_seconds)] for _ in range(self.threads)]
        bulk = self.queues.lane(BULK)
        reserved = max(1, self.threads // 4) if self.threads >= 2 else 0
        wait = self.wait_seconds
        both: list[Poll] = [(main, 0), (bulk, wait)] if reserved else [(main, 0), (bulk, 0), (main, wait)]
        return [[(main, wait)] for _ in range(reserved)] + [list(both) for _ in range(self.threads - reserved)]

    # ---- consuming ---------------------------------------------------------------------------------
    def _consume(self, polls: list[Poll]) -> None:
        while not self.stopping.is_set():
            for queue, wait in polls:
                self._wait_for_database()
                if self.stopping.is_set():
                    return
                received = self._receive(queue, wait)
                if received:
                    self._run(queue, received)
                    break
                if self.stopping.is_set():
                    return

    def _receive(self, queue: LaneQueue, wait: int) -> list[dict[str, Any]]:
        try:
            reply = self.sqs.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=self.messages_per_receive,
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.visibility_timeout,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception:  # SQS unreachable: wait and poll again, nothing is lost
            log.exception("receive failed", extra={"queue": queue.name})
            self.stopping.wait(2.0)
            return []
        return list(reply.get("Messages", []))

    def _run(self, queue: LaneQueue, received: list[dict[str, Any]]) -> None:
        for message in received:  # every message in hand has its visibility kept up, run or not
            self._track(queue, message)
        done: list[dict[str, Any]] = []
        try:
            for index, message in enumerate(received):
                self._wait_for_database()
                if self.stopping.is_set():
                    _release(self.sqs, queue.url, received[index:])
                    break
                self.process(message, lane=queue.lane, acknowledged=done)
        finally:
            # One DeleteMessageBatch for the messages that succeeded (SQS bills per request); a crash
            # before it only redelivers jobs that already had their effect, which receipts make no-ops.
            self._delete(queue, done)
            for message in received:
                self._untrack(message)

    def process(self, message: dict[str, Any], *, lane: Lane = MAIN,
                acknowledged: list[dict[str, Any]] | None = None) -> str:
        """Run one message received from `lane`'s queue; returns what became of it: done, retry, dead_letter.

        A message that succeeded is deleted at once, or appended to `acknowledged` for the caller to
        delete in one batch; a failed one is never deleted."""
        queue = self.queues.lane(lane)
        attributes = message.get("Attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
        sent_at_ms = int(attributes.get("SentTimestamp", str(int(time.time() * 1000))))
        if receive_count == 1:
            JOB_QUEUE_LAG.labels(queue.lane).observe(max(0.0, time.time() - sent_at_ms / 1000))
        body = message["Body"]
        handler = _handler_label(body)
        started = time.perf_counter()
        try:
            dispatch(self.app, Message(body=body, message_id=message["MessageId"], receive_count=receive_count,
                                       sent_at_ms=sent_at_ms, lane=queue.lane), queue_arn=self._queue_arns[queue.lane])
        except PoisonMessage as poison:
            log.error("poison message", extra={"handler": handler, "reason": poison.reason,
                                               "message_id": message["MessageId"]})
            if self._give_up(queue, message, handler, kind="poison", reason=poison.reason, error=None,
                             receive_count=receive_count):
                return "dead_letter"
            self._retry_later(queue, message, receive_count)
            return "retry"
        except Exception as exc:
            JOBS_FAILED.labels(handler).inc()
            unreachable = unavailability(exc) is Unavailability.UNREACHABLE
            if unreachable and not self.database_away.is_set():
                self.database_away.set()
                log.warning("database unreachable: taking no more work until it answers", extra={"handler": handler})
            if receive_count >= queue.max_receives and not unreachable:
                log.exception("job failed for the last time: giving up on it",
                              extra={"handler": handler, "receive_count": receive_count})
                if self._give_up(queue, message, handler, kind="failed",
                                 reason=f"failed {receive_count} times (last error: {type(exc).__name__})",
                                 error=f"{type(exc).__name__}: {exc}", receive_count=receive_count):
                    return "dead_letter"
            else:
                JOBS_RETRIED.labels(handler).inc()
                log.warning("job failed; the queue retries it", exc_info=exc,
                            extra={"handler": handler, "receive_count": receive_count})
            self._retry_later(queue, message, receive_count)
            return "retry"
        finally:
            JOB_DURATION.labels(handler).observe(time.perf_counter() - started)
        if acknowledged is None:
            self._delete(queue, [message])
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
    def _give_up(self, queue: LaneQueue, message: dict[str, Any], handler: str, *, kind: str, reason: str,
                 error: str | None, receive_count: int) -> bool:
        """Tell the job's capability, then move the message to the DLQ with why; False if it could not
        be moved (it stays on its queue, whose redrive policy moves it on its next receive)."""
        gave_up(message["Body"], reason)
        attributes = {
            REASON: {"DataType": "String", "StringValue": reason[:1000]},
            RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(receive_count)},
            SOURCE_QUEUE: {"DataType": "String", "StringValue": queue.name},
            "source_message_id": {"DataType": "String", "StringValue": message["MessageId"]},
        }
        if error:
            attributes[ERROR] = {"DataType": "String", "StringValue": error[:2000]}
        try:
            self.sqs.send_message(QueueUrl=queue.dlq_url, MessageBody=message["Body"], MessageAttributes=attributes)
        except Exception:
            log.exception("could not dead-letter a message", extra={"handler": handler})
            return False
        JOBS_DEAD_LETTERED.labels(handler, kind).inc()
        try:
            self.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
        except Exception:  # it comes back once more and the redrive policy moves it: a second copy in the DLQ
            log.warning("could not delete a dead-lettered message", exc_info=True, extra={"handler": handler})
        return True

    def _retry_later(self, queue: LaneQueue, message: dict[str, Any], receive_count: int) -> None:
        """Exponential backoff with full jitter before the queue offers it again (SQS caps at 12 h)."""
        delay = random.uniform(0, min(900, self.retry_base_seconds * 2 ** (receive_count - 1)))
        try:
            self.sqs.change_message_visibility(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=int(delay))
        except Exception:  # the visibility timeout still returns it; the backoff is a nicety
            log.warning("could not set retry backoff", exc_info=True)

    def _delete(self, queue: LaneQueue, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start:start + 10]
            reply = self.sqs.delete_message_batch(QueueUrl=queue.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
            for failed in reply.get("Failed", []):  # rare; the message comes back and its receipt makes it a no-op
                log.warning("could not delete a finished job", extra={"entry": failed})

    def _track(self, queue: LaneQueue, message: dict[str, Any]) -> None:
        with self._lock:
            self._in_flight[message["MessageId"]] = _InFlight(queue.url, message["ReceiptHandle"], time.monotonic())
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
                    self.sqs.change_message_visibility(QueueUrl=flight.queue_url, ReceiptHandle=flight.receipt_handle,
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


# ---- the dead-letter queues (`crm dlq`) --------------------------------------------------------------------
def dead_letters(sqs: Any, queues: Queues, *, limit: int = 100) -> list[dict[str, Any]]:
    """Dead-lettered jobs of every lane, each made visible again right after the listing.

    SQS cannot peek: every receive counts, so the receive count shown is the one the message had when
    it was dead-lettered — written by the worker, or, for a message the redrive policy moved, by
    definition its queue's maxReceiveCount — never SQS's count, which listing itself inflates."""
    entries: list[dict[str, Any]] = []
    for queue in _dead_letter_queues(queues):
        held: list[dict[str, Any]] = []
        try:
            while len(entries) + len(held) < limit:
                reply = sqs.receive_message(QueueUrl=queue.dlq_url,
                                            MaxNumberOfMessages=min(10, limit - len(entries) - len(held)),
                                            VisibilityTimeout=30, WaitTimeSeconds=0, AttributeNames=["All"],
                                            MessageAttributeNames=["All"])
                if not reply.get("Messages"):
                    break
                held.extend(reply["Messages"])
        finally:
            _release(sqs, queue.dlq_url, held)
        entries.extend(_describe(m, queue) for m in held)
    return entries


def redrive(sqs: Any, queues: Queues, *, message_ids: set[str] | None = None, limit: int = 1000) -> int:
    """Send dead-lettered jobs back to the queue they came from (all, or the named ones); returns how many."""
    moved = 0
    for queue in _dead_letter_queues(queues):
        held: list[dict[str, Any]] = []
        try:
            while moved < limit:
                reply = sqs.receive_message(QueueUrl=queue.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                            WaitTimeSeconds=0, MessageAttributeNames=["All"])
                if not reply.get("Messages"):
                    break
                for m in reply["Messages"]:
                    if (message_ids is not None and m["MessageId"] not in message_ids) or moved >= limit:
                        held.append(m)
                        continue
                    sqs.send_message(QueueUrl=queue.url, MessageBody=m["Body"])
                    sqs.delete_message(QueueUrl=queue.dlq_url, ReceiptHandle=m["ReceiptHandle"])
                    moved += 1
        finally:
            _release(sqs, queue.dlq_url, held)
    return moved


def _dead_letter_queues(queues: Queues) -> list[LaneQueue]:
    """Each lane whose DLQ is its own (a lane sharing another's DLQ would list it twice)."""
    seen: set[str] = set()
    lanes = []
    for queue in queues.lanes():
        if queue.dlq_url not in seen:
            seen.add(queue.dlq_url)
            lanes.append(queue)
    return lanes


def _release(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages[start:start + 10])])


def _describe(message: dict[str, Any], queue: LaneQueue) -> dict[str, Any]:
    attributes = message.get("MessageAttributes", {})

    def attribute(name: str) -> str | None:
        value = attributes.get(name, {}).get("StringValue")
        return None if value is None else str(value)

    try:
        handler: str | None = json.loads(message["Body"]).get("handler")
    except (ValueError, AttributeError):
        handler = None
    written_count = attribute(RECEIVE_COUNT)
    return {
        "message_id": message["MessageId"],
        "queue": attribute(SOURCE_QUEUE) or queue.name,
        "handler": handler,
        "reason": attribute(REASON)
        or f"received {queue.max_receives} times without finishing (moved by the queue's redrive policy)",
        "error": attribute(ERROR),
        "receive_count": int(written_count) if written_count is not None else queue.max_receives,
        "sent_at": message.get("Attributes", {}).get("SentTimestamp"),
        "body": message["Body"][:2000],
    }
