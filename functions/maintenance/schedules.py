"""Maintenance: scheduled housekeeping handlers."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.maintenance import service
from functions.maintenance.routes import bp
from layers.observability.logging import get_logger
from shared.clock import utcnow


@bp.schedule("cron(0 3 * * ? *)", name="maintenance_purge_archived")
def maintenance_purge_archived(event: CloudWatchEvent) -> None:
    """Daily: hard-delete records archived more than 90 days ago (their field history stays)."""
    purged = service.purge_archived(now=utcnow())
    get_logger().info("archived records purged", extra={"handler": "maintenance_purge_archived", **purged})


@bp.schedule("rate(1 hour)", name="maintenance_expire_keys")
def maintenance_expire_keys(event: CloudWatchEvent) -> None:
    """Old published events, job receipts and expired Idempotency-Key records deleted; Redis keys that lost
    their TTL get it back."""
    expired = service.expire_stale_entries(now=utcnow())
    get_logger().info("expired entries", extra={"handler": "maintenance_expire_keys", **expired})
