"""Jobs: an envelope on the jobs queue naming its handler, enqueued through the outbox.

`enqueue` adds the job to the unit of work's transaction, so a request that fails sends no job,
and one that commits always does (the relay publishes it). On the wire every message is
`{"handler": NAME, "job_id": ID, "payload": {...}}`; EventBridge Scheduler sends `{"handler": NAME}`.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from chalice.app import SQSEvent, SQSRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.queue.receipts import JobReceipt
from layers.queue.wakeup import nudge_after_commit
from shared.clock import utcnow
from shared.ids import new_id

T = TypeVar("T", bound=BaseModel)


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


def enqueue(uow: UnitOfWork, handler: str, payload: BaseModel | dict[str, Any], *, job_id: str | None = None) -> str:
    """Send a job when (and only if) the unit of work commits; returns the job id."""
    scope = uow.scope
    assert scope is not None, "jobs belong to a workspace"
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


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "body"
    return f"{where}: {error.get('msg')}"

