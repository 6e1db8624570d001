"""The jobs queue and its dead-letter queue on SQS."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from layers.aws.clients import client
from shared.settings import get_settings


@dataclass(frozen=True)
class Queues:
    jobs_url: str
    dlq_url: str
    max_receives: int


_lock = threading.Lock()
_queues: Queues | None = None


def sqs() -> Any:
    return client("sqs")


def queues() -> Queues:
    """The queue URLs from settings, or looked up by name; maxReceiveCount from the redrive policy."""
    global _queues
    if _queues is None:
        with _lock:
            if _queues is None:
                _queues = _resolve()
    return _queues


def use_queues(value: Queues | None) -> None:
    global _queues
    with _lock:
        _queues = value


def _resolve() -> Queues:
    settings = get_settings()
    jobs_url = settings.jobs_queue_url or sqs().get_queue_url(QueueName=settings.jobs_queue_name)["QueueUrl"]
    attributes = sqs().get_queue_attributes(QueueUrl=jobs_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    max_receives = int(policy.get("maxReceiveCount") or settings.worker_max_receives)
    dlq_url = settings.jobs_dlq_url
    if dlq_url is None:
        if policy.get("deadLetterTargetArn"):
            dlq_url = sqs().get_queue_url(QueueName=policy["deadLetterTargetArn"].rsplit(":", 1)[-1])["QueueUrl"]
        else:
            dlq_url = sqs().get_queue_url(QueueName=f"{settings.jobs_queue_name}-dlq")["QueueUrl"]
    return Queues(jobs_url=jobs_url, dlq_url=dlq_url, max_receives=max_receives)


def create_queues(*, name: str | None = None, max_receives: int | None = None,
                  visibility_timeout: int | None = None) -> Queues:
    """Create the jobs queue and its DLQ with a redrive policy (local mode and tests; stacks/ in AWS)."""
    settings = get_settings()
    name = name or settings.jobs_queue_name
    max_receives = max_receives or settings.worker_max_receives
    dlq_url = sqs().create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs().get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    jobs_url = sqs().create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility_timeout or settings.worker_visibility_timeout),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
    })["QueueUrl"]
    return Queues(jobs_url=jobs_url, dlq_url=dlq_url, max_receives=max_receives)


def send_job(handler: str, payload: dict[str, Any] | None = None, *, queue_url: str | None = None) -> str:
    """Send a job now, outside any transaction (schedulers, operators); returns the SQS message id."""
    body: dict[str, Any] = {"handler": handler}
    if payload is not None:
        body["payload"] = payload
    reply = sqs().send_message(QueueUrl=queue_url or queues().jobs_url, MessageBody=json.dumps(body))
    return str(reply["MessageId"])
