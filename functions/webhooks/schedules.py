"""Webhook schedules: send the retries that are due, and forget delivery logs after 30 days."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.webhooks import service
from functions.webhooks.routes import bp


@bp.schedule("rate(1 minute)", name="webhooks_retry_due")
def webhooks_retry_due(event: CloudWatchEvent) -> None:
    service.retry_due()


@bp.schedule("rate(1 day)", name="webhooks_purge_logs")
def webhooks_purge_logs(event: CloudWatchEvent) -> None:
    service.purge_logs()
