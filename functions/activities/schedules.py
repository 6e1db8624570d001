"""Activities: scheduled handlers."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.activities import service
from functions.activities.routes import bp
from layers.observability.logging import get_logger
from shared.clock import utcnow


@bp.schedule("rate(5 minutes)", name="activities_remind_tasks")
def activities_remind_tasks(event: CloudWatchEvent) -> None:
    """`task.due` shortly before an open task's due time, `task.overdue` once it has passed: each once."""
    sent = service.remind_tasks(now=utcnow())
    get_logger().info("task reminders", extra={"handler": "activities_remind_tasks", **sent})
