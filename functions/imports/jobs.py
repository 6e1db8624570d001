"""Import jobs: `imports_run` imports one chunk after the checkpoint, then enqueues its continuation."""
from __future__ import annotations

from chalice.app import SQSEvent

from functions.imports import service
from functions.imports.routes import bp
from functions.imports.schemas import ImportRunJob
from layers.queue.jobs import job_payloads, on_dead_letter


@bp.on_sqs_message(queue="crm-jobs", name="imports_run")
def imports_run(event: SQSEvent) -> None:
    for job in job_payloads(event, ImportRunJob):
        service.run_chunk(job)


@on_dead_letter("imports_run", ImportRunJob)
def imports_run_given_up(job: ImportRunJob, reason: str) -> None:
    service.give_up(job, reason)
