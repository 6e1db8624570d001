"""Import schedules: fail the imports whose job is gone."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.imports import service
from functions.imports.routes import bp
from layers.observability.logging import get_logger


@bp.schedule("rate(15 minutes)", name="imports_fail_stalled")
def imports_fail_stalled(event: CloudWatchEvent) -> None:
    """Imports with no chunk for an hour (or not started in a day) are failed, saying why."""
    failed = service.fail_stalled()
    if failed:
        get_logger().warning("stalled imports failed", extra={"handler": "imports_fail_stalled", "failed": failed})
