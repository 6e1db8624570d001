"""Export jobs: `exports_run` writes the export's file and marks it completed."""
from __future__ import annotations

from chalice.app import SQSEvent

from functions.exports import service
from functions.exports.routes import bp
from functions.exports.schemas import ExportRunJob
from layers.queue.jobs import job_payloads, on_dead_letter


@bp.on_sqs_message(queue="crm-jobs", name="exports_run")
def exports_run(event: SQSEvent) -> None:
    for job in job_payloads(event, ExportRunJob):
        service.run_export(job)


@on_dead_letter("exports_run", ExportRunJob)
def exports_run_given_up(job: ExportRunJob, reason: str) -> None:
    service.give_up(job, reason)
