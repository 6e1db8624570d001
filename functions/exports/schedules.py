"""Export schedules: fail the exports whose job is gone."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.exports import service
from functions.exports.routes import bp
from layers.observability.logging import get_logger


@bp.schedule("rate(15 minutes)", name="exports_fail_stalled")
def exports_fail_stalled(event: CloudWatchEvent) -> None:
    """Exports running for six hours (their job is gone) are failed, saying why."""
    failed = service.fail_stalled()
    if failed:
        get_logger().warning("stalled exports failed", extra={"handler": "exports_fail_stalled", "failed": failed})
