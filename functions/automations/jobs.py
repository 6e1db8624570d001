"""Automation jobs: every committed event, a retried run, a scheduled firing."""
from __future__ import annotations

from chalice.app import SQSEvent

from functions.automations import service
from functions.automations.routes import bp, known_job_handlers
from functions.automations.schemas import EventJob, RetryRunJob, RunScheduleJob
from layers.queue.jobs import job_payloads


@bp.on_sqs_message(queue="crm-jobs", name="automations_evaluate")
def automations_evaluate(event: SQSEvent) -> None:
    for job in job_payloads(event, EventJob):
        service.evaluate(job, known_jobs=known_job_handlers())


@bp.on_sqs_message(queue="crm-jobs", name="automations_retry_run")
def automations_retry_run(event: SQSEvent) -> None:
    for job in job_payloads(event, RetryRunJob):
        service.retry(job, known_jobs=known_job_handlers())


@bp.on_sqs_message(queue="crm-jobs", name="automations_fire_schedule")
def automations_fire_schedule(event: SQSEvent) -> None:
    for job in job_payloads(event, RunScheduleJob):
        service.run_schedule(job, known_jobs=known_job_handlers())
