"""What activities ask of deals: keep `last_activity_at` (the input of stale-deal checks) current.

Called by functions/activities inside its unit of work, so the deal moves with the activity write.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm.exc import StaleDataError

from functions.deals.models import Deal
from layers.cache import records as record_cache
from layers.db.uow import UnitOfWork
from shared.errors import Conflict


def touch_last_activity(uow: UnitOfWork, deal_ids: list[str], at: datetime) -> None:
    """Move each deal's `last_activity_at` forward to `at` (never back: an older activity logged late
    does not make a deal look fresher than it is)."""
    if not deal_ids:
        return
    deals = list(uow.session.scalars(select(Deal).where(
        Deal.id.in_(deal_ids), or_(Deal.last_activity_at.is_(None), Deal.last_activity_at < at))))
    if not deals:
        return
    for deal in deals:
        deal.last_activity_at = at
    try:
        uow.session.flush()  # the version bumps: the deal's representation (and ETag) changed
    except StaleDataError:
        raise Conflict("a linked deal was changed by another request at the same time; retry") from None
    scope = uow.scope
    assert scope is not None
    pending = [(deal.id, deal.version) for deal in deals]

    def mark_pending() -> None:  # readers miss until the next fill: nobody is served the deal as it was
        for deal_id, version in pending:
            record_cache.mark_pending(uow, scope.workspace_id, "deals", deal_id, version)

    uow.before_commit(mark_pending)
