"""Webhook jobs: fan committed events out into deliveries, and make one delivery attempt."""
from __future__ import annotations

from chalice.app import SQSEvent

from functions.webhooks import service
from functions.webhooks.routes import bp
from functions.webhooks.schemas import DeliverJob, EventJob
from layers.queue.jobs import job_payloads


@bp.on_sqs_message(queue="crm-jobs", name="webhooks_fanout")
def webhooks_fanout(event: SQSEvent) -> None:
    for job in job_payloads(event, EventJob):
        service.fan_out(job)


@bp.on_sqs_message(queue="crm-jobs", name="webhooks_deliver")
def webhooks_deliver(event: SQSEvent) -> None:
    # A receiver's failure does not raise: the retry is ours (service.retry_due), not the queue's.
    for job in job_payloads(event, DeliverJob):
        service.deliver(job)
