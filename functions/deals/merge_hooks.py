"""What a company merge asks of deals: move them to the surviving company (and back on undo).

Kept apart from deals/service.py so merges need nothing else of deals; the deals' RecordService is
found through the associations registry (deals register there), so each moved deal gets its history
row, `deal.updated` event and cache refresh like any other update.
"""
from __future__ import annotations

from sqlalchemy import select

from functions.associations import service as associations
from functions.deals.models import Deal
from layers.db.uow import UnitOfWork
from layers.records.history import record_changes
from shared.clock import utcnow


def reassign_company(uow: UnitOfWork, from_id: str, to_id: str, *, only: list[str] | None = None) -> list[str]:
    """Deals of company `from_id` (archived ones too; `only` these) now belong to `to_id`. Returns their ids."""
    statement = select(Deal).where(Deal.company_id == from_id).order_by(Deal.id)
    if only is not None:
        statement = statement.where(Deal.id.in_(only or [""]))
    rows = list(uow.session.scalars(statement))
    service = associations.record_service("deals")
    for row in rows:
        if service is not None:
            service._change(uow, row, {"company_id": to_id}, action="updated", event="updated")
        else:  # deals not composed in (a partial app): the column and its history still move
            row.company_id = to_id
            uow.session.flush()
            record_changes(uow, object_type="deals", record_id=row.id, action="updated",
                           changes={"company_id": (from_id, to_id)}, at=utcnow())
    return [row.id for row in rows]
