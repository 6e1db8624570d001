"""Activity aggregates for the reports capability, computed by the database with GROUP BY.

An ORM select on `Activity`: the unit of work adds the workspace filter and, for members limited to
their team's records, the owner filter.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from functions.activities.models import Activity
from layers.db.uow import UnitOfWork


@dataclass(frozen=True)
class OwnerKindCount:
    owner_id: str | None
    kind: str
    count: int


def counts_by_owner_and_kind(uow: UnitOfWork, *, start: datetime, end: datetime) -> list[OwnerKindCount]:
    """Live activities that happened in [start, end), counted per owner and kind."""
    statement = (
        select(Activity.owner_id, Activity.kind, func.count())
        .where(Activity.archived_at.is_(None), Activity.occurred_at >= start, Activity.occurred_at < end)
        .group_by(Activity.owner_id, Activity.kind)
        .order_by(Activity.owner_id, Activity.kind)
    )
    return [OwnerKindCount(owner_id, kind, count)
            for owner_id, kind, count in uow.session.execute(statement)]
