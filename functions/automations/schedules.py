"""Automation schedules: claim the due firings of schedule-triggered rules every minute."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.automations import service
from functions.automations.routes import bp


@bp.schedule("rate(1 minute)", name="automations_run_scheduled")
def automations_run_scheduled(event: CloudWatchEvent) -> None:
    service.sweep_schedules()
