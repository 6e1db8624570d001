"""The jobs queue, the bulk queue (layers/queue/lanes.py) and their dead-letter queues on SQS."""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from layers.aws.clients import client
from layers.queue.lanes import BULK, MAIN, Lane
from shared.settings import get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaneQueue:
    """One lane's queue, its dead-letter queue, and the receives its redrive policy allows."""

    lane: Lane
    url: str
    dlq_url: str
    max_receives: int

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Queues:
    jobs_url: str
    dlq_url: str
    max_receives: int
    # None: there is no bulk queue, and bulk work shares the jobs queue (a deployment that predates it).
    bulk_url: str | None = None
    bulk_dlq_url: str | None = None
    bulk_max_receives: int | None = None

    @property
    def main(self) -> LaneQueue:
        return LaneQueue(MAIN, self.jobs_url, self.dlq_url, self.max_receives)

    @property
    def has_bulk(self) -> bool:
        return self.bulk_url is not None

    def lane(self, lane: Lane) -> LaneQueue:
        if lane == BULK and self.bulk_url is not None:
            return LaneQueue(BULK, self.bulk_url, self.bulk_dlq_url or self.dlq_url,
                             self.bulk_max_receives or self.max_receives)
        return self.main

    def lanes(self) -> tuple[LaneQueue, ...]:
        """The distinct queues, the jobs queue first (it has priority)."""
        return (self.main, self.lane(BULK)) if self.has_bulk else (self.main,)


_lock = threading.Lock()
_queues: Queues | None = None


def sqs() -> Any:
    return client("sqs")


def queues() -> Queues:
    """The queue URLs from settings, or looked up by name; maxReceiveCount from the redrive policies."""
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


def bulk_queue_name(jobs_queue_name: str) -> str:
    return get_settings().jobs_bulk_queue_name or f"{jobs_queue_name}-bulk"


def _resolve() -> Queues:
    settings = get_settings()
    jobs_url = settings.jobs_queue_url or sqs().get_queue_url(QueueName=settings.jobs_queue_name)["QueueUrl"]
    dlq_url, max_receives = _dead_letter_of(jobs_url, settings.jobs_dlq_url, f"{settings.jobs_queue_name}-dlq")
    bulk_url = settings.jobs_bulk_queue_url
    if bulk_url is None:
        name = bulk_queue_name(settings.jobs_queue_name)
        try:
            bulk_url = sqs().get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _MISSING_QUEUE:
                raise
            log.warning("no bulk queue %s: bulk work shares the jobs queue", name)
            return Queues(jobs_url=jobs_url, dlq_url=dlq_url, max_receives=max_receives)
    bulk_dlq_url, bulk_max_receives = _dead_letter_of(
        bulk_url, settings.jobs_bulk_dlq_url, f"{bulk_url.rstrip('/').rsplit('/', 1)[-1]}-dlq")
    return Queues(jobs_url=jobs_url, dlq_url=dlq_url, max_receives=max_receives, bulk_url=bulk_url,
                  bulk_dlq_url=bulk_dlq_url, bulk_max_receives=bulk_max_receives)


_MISSING_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def _dead_letter_of(queue_url: str, configured_dlq_url: str | None, default_dlq_name: str) -> tuple[str, int]:
    """The queue's dead-letter queue URL and maxReceiveCount (from its redrive policy, else the settings)."""
    attributes = sqs().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    max_receives = int(policy.get("maxReceiveCount") or get_settings().worker_max_receives)
    if configured_dlq_url is not None:
        return configured_dlq_url, max_receives
    name = policy["deadLetterTargetArn"].rsplit(":", 1)[-1] if policy.get("deadLetterTargetArn") else default_dlq_name
    return sqs().get_queue_url(QueueName=name)["QueueUrl"], max_receives


def create_queues(*, name: str | None = None, max_receives: int | None = None,
                  visibility_timeout: int | None = None) -> Queues:
    """Create the jobs and bulk queues, each with its DLQ and redrive policy (local mode and tests; stacks/ in AWS)."""
    settings = get_settings()
    name = name or settings.jobs_queue_name
    max_receives = max_receives or settings.worker_max_receives
    visibility = str(visibility_timeout or settings.worker_visibility_timeout)
    jobs_url, dlq_url = _create_with_dlq(name, max_receives, visibility)
    bulk_url, bulk_dlq_url = _create_with_dlq(bulk_queue_name(name), max_receives, visibility)
    return Queues(jobs_url=jobs_url, dlq_url=dlq_url, max_receives=max_receives, bulk_url=bulk_url,
                  bulk_dlq_url=bulk_dlq_url, bulk_max_receives=max_receives)


def _create_with_dlq(name: str, max_receives: int, visibility: str) -> tuple[str, str]:
    dlq_url = sqs().create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs().get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs().create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": visibility,
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
    })["QueueUrl"]
    return str(url), str(dlq_url)


def send_job(handler: str, payload: dict[str, Any] | None = None, *, queue_url: str | None = None) -> str:
    """Send a job now, outside any transaction (schedulers, operators); returns the SQS message id."""
    body: dict[str, Any] = {"handler": handler}
    if payload is not None:
        body["payload"] = payload
    reply = sqs().send_message(QueueUrl=queue_url or queues().jobs_url, MessageBody=json.dumps(body))
    return str(reply["MessageId"])
