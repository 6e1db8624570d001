"""Jobs: an envelope on the jobs queue naming its handler, enqueued through the outbox.

`enqueue` adds the job to the unit of work's transaction, so a request that fails sends no job,
and one that commits always does (the relay publishes it). On the wire every message is
`{"handler": NAME, "job_id": ID, "payload": {...}}`; EventBridge Scheduler sends `{"handler": NAME}`.

When the worker gives up on a job — a poison message, or a failure on its last allowed receive — it
dead-letters it and calls what the handler's capability declared with `@on_dead_letter(NAME, Model)`:
an export or import marks its row failed with the reason instead of staying `running` forever.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from chalice.app import SQSEvent, SQSRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from layers.db.uow import UnitOfWork
from layers.queue.lanes import Lane, current_lane
from layers.queue.outbox import OutboxEvent
from layers.queue.receipts import JobReceipt
from layers.queue.wakeup import nudge_after_commit
from shared.clock import utcnow
from shared.ids import new_id

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
MAX_DELAY_SECONDS = 900  # SQS's limit on DelaySeconds


class PoisonMessage(Exception):
    """A message no retry can fix (unknown handler, malformed payload): straight to the dead-letter queue."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handler: str = Field(min_length=1, max_length=64)
    job_id: str | None = None
    payload: dict[str, Any] | None = None


def enqueue(uow: UnitOfWork, handler: str, payload: BaseModel | dict[str, Any], *, job_id: str | None = None,
            lane: Lane | None = None, delay_seconds: int = 0) -> str:
    """Send a job when (and only if) the unit of work commits; returns the job id.

    `lane`: the queue it goes by (default: the lane of the job being handled, main in a request);
    `delay_seconds` (at most 900, SQS's limit): how long the queue hides it once published."""
    scope = uow.scope
    assert scope is not None, "jobs belong to a workspace"
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be within 0..{MAX_DELAY_SECONDS}, not {delay_seconds}")
    job_id = job_id or new_id()
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    uow.session.add(OutboxEvent(
        id=new_id(),
        kind="job",
        workspace_id=scope.workspace_id,
        event_type=handler,
        object_type="job",
        record_id=job_id,
        occurred_at=utcnow(),
        lane=lane or current_lane(),
        delay_seconds=delay_seconds or None,
        payload={"handler": handler, "job_id": job_id, "payload": body},
    ))
    nudge_after_commit(uow)
    return job_id


def parse_envelope(body: str) -> Envelope:
    try:
        return Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise PoisonMessage(f"not a job envelope: {_first_error(exc)}") from None


def job_payloads(event: SQSEvent, model: type[T]) -> Iterator[T]:
    """Each record's body as the handler's payload model; a malformed one is a poison message."""
    for record in event:
        yield parse_payload(record, model)


def parse_payload(record: SQSRecord, model: type[T]) -> T:
    try:
        return model.model_validate_json(record.body)
    except ValidationError as exc:
        raise PoisonMessage(f"malformed {model.__name__}: {_first_error(exc)}") from None


def first_time(uow: UnitOfWork, key: str) -> bool:
    """Claim `key` in this transaction: False if a committed run already had the effect.

    At-least-once delivery means a job may run twice; its effects commit with this receipt, so the
    second run finds the receipt and does nothing."""
    try:
        with uow.savepoint():
            uow.session.add(JobReceipt(key=key[:191], received_at=utcnow()))
            uow.session.flush()
    except IntegrityError:
        return False
    return True


# ---- giving up ----------------------------------------------------------------------------------------
GaveUpCallback = Callable[[dict[str, Any] | None, str], None]
_gave_up: dict[str, GaveUpCallback] = {}


def on_dead_letter(handler: str, model: type[T]) -> Callable[[Callable[[T, str], None]], Callable[[T, str], None]]:
    """Declare what happens when the worker gives up on a `handler` job: the function gets the job's
    payload (as `model`) and why, in words fit to show the job's owner.

    It runs once the job failed its last allowed receive or was found to be poison; a payload that does
    not parse as `model` names nothing to mark, so the function is not called for it."""

    def register(function: Callable[[T, str], None]) -> Callable[[T, str], None]:
        def call(payload: dict[str, Any] | None, reason: str) -> None:
            try:
                job = model.model_validate(payload)
            except ValidationError:
                log.warning("dead-lettered job names nothing to mark", extra={"handler": handler})
                return
            function(job, reason)

        _gave_up[handler] = call
        return function

    return register


def gave_up(body: str, reason: str) -> bool:
    """Tell the job's capability that its message was given up; False when that failed or none listens.

    Never raises: the message is dead-lettered either way (the stalled-job sweeps are the safety net)."""
    try:
        envelope = parse_envelope(body)
    except PoisonMessage:
        return False
    callback = _gave_up.get(envelope.handler)
    if callback is None:
        return False
    try:
        callback(envelope.payload, reason)
    except Exception:
        log.exception("could not mark a dead-lettered job as given up", extra={"handler": envelope.handler})
        return False
    return True


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "body"
    return f"{where}: {error.get('msg')}"

