"""AI jobs: finish a queued (async) run in the worker tier."""
from __future__ import annotations

from chalice.app import SQSEvent

from functions.ai import service
from functions.ai.routes import bp
from functions.ai.schemas import AIRunJob
from layers.queue.jobs import job_payloads


@bp.on_sqs_message(queue="crm-jobs", name="ai_run")
def ai_run(event: SQSEvent) -> None:
    for job in job_payloads(event, AIRunJob):
        service.finish_queued(job)
