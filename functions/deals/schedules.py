"""Deals: scheduled handlers."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.deals import service
from functions.deals.routes import bp
from layers.observability.logging import get_logger
from shared.clock import utcnow


@bp.schedule("rate(1 hour)", name="deals_flag_stale")
def deals_flag_stale(event: CloudWatchEvent) -> None:
    """`deal.stale` for open deals without activity for the workspace's `stale_deal_days`, once per period."""
    flagged = service.flag_stale_deals(now=utcnow())
    get_logger().info("stale deals", extra={"handler": "deals_flag_stale", **flagged})
