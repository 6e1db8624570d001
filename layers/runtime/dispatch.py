"""Run one queue message on its handler from `app.handler_map`, the way Lambda would.

Job handlers (`on_sqs_message`) get an SQS event whose one record's body is the job's payload;
schedule handlers (`schedule`) get a scheduled event. The worker, the inline queue of tests and
local mode, and `crm invoke` all come through here. The handler runs in its message's lane, so what it
enqueues or emits stays in that lane (layers/queue/lanes.py).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Chalice, ScheduledEventConfig, SQSEventConfig

from layers.http.context import InvocationContext
from layers.queue.jobs import PoisonMessage, parse_envelope
from layers.queue.lanes import MAIN, Lane, working_in
from shared.clock import utcnow

HandlerKind = str  # "job" | "schedule"


def handler_kinds(app: Chalice) -> dict[str, HandlerKind]:
    kinds: dict[str, HandlerKind] = {}
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig):
            kinds[source.name] = "job"
        elif isinstance(source, ScheduledEventConfig):
            kinds[source.name] = "schedule"
    return kinds


def schedules(app: Chalice) -> dict[str, str]:
    """Schedule handler name -> its expression (`rate(...)`, `cron(...)`)."""
    return {s.name: str(s.schedule_expression) for s in app.event_sources if isinstance(s, ScheduledEventConfig)}


@dataclass
class Message:
    """One message as the worker received it (or as the inline queue holds it)."""

    body: str
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receive_count: int = 1
    sent_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    attributes: dict[str, str] = field(default_factory=dict)
    lane: Lane = MAIN


def handler_name(body: str) -> str:
    return parse_envelope(body).handler


def dispatch(app: Chalice, message: Message, *, queue_arn: str = "arn:aws:sqs:us-east-1:000000000000:crm-jobs") -> Any:
    """Run the message's handler; PoisonMessage when no retry could ever make it run."""
    envelope = parse_envelope(message.body)
    handler = app.handler_map.get(envelope.handler)
    kind = handler_kinds(app).get(envelope.handler)
    if handler is None or kind is None:
        raise PoisonMessage(f"unknown handler {envelope.handler!r}")
    context = InvocationContext(aws_request_id=message.message_id, function_name=envelope.handler)
    if kind == "schedule":
        event = scheduled_event(envelope.handler)
    elif envelope.payload is None:
        raise PoisonMessage(f"job {envelope.handler!r} has no payload")
    else:
        event = sqs_event(envelope.payload, message, queue_arn=queue_arn, job_id=envelope.job_id)
    with working_in(message.lane):
        return handler(event, context)


def sqs_event(
    payload: dict[str, Any], message: Message, *, queue_arn: str, job_id: str | None = None
) -> dict[str, Any]:
    body = json.dumps(payload, separators=(",", ":"), default=str)
    attributes = {}
    if job_id:
        attributes["job_id"] = {"stringValue": job_id, "dataType": "String"}
    return {"Records": [{
        "messageId": message.message_id,
        "receiptHandle": message.message_id,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": str(message.sent_at_ms),
            "SenderId": "crm",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": attributes,
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 3 else "us-east-1",
    }]}


def scheduled_event(name: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "000000000000",
        "time": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:scheduler:us-east-1:000000000000:schedule/default/{name}"],
        "detail": {},
    }
