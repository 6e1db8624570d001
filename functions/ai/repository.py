"""Queries of the AI capability, in the caller's unit of work (tenancy applies)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update

from functions.ai.models import AIRun, AISettings
from layers.db.uow import UnitOfWork


def settings(uow: UnitOfWork) -> AISettings | None:
    return uow.session.scalars(select(AISettings).limit(1)).first()


def get_run(uow: UnitOfWork, run_id: str) -> AIRun | None:
    return uow.session.get(AIRun, run_id)


def runs_page(
    uow: UnitOfWork, *, requested_by_id: str | None, feature: str | None, status: str | None, before_id: str | None,
    limit: int,
) -> list[AIRun]:
    """Newest first (ids are ULIDs); `requested_by_id` limits it to one person's runs."""
    statement = select(AIRun).order_by(AIRun.id.desc()).limit(limit + 1)
    if requested_by_id is not None:
        statement = statement.where(AIRun.requested_by_id == requested_by_id)
    if feature is not None:
        statement = statement.where(AIRun.feature == feature)
    if status is not None:
        statement = statement.where(AIRun.status == status)
    if before_id is not None:
        statement = statement.where(AIRun.id < before_id)
    return list(uow.session.scalars(statement))


def month_cost(uow: UnitOfWork, start: datetime, end: datetime) -> Decimal:
    total = uow.session.scalar(select(func.coalesce(func.sum(AIRun.cost), 0))
                               .where(AIRun.created_at >= start, AIRun.created_at < end))
    return Decimal(str(total or 0))


def usage(uow: UnitOfWork, start: datetime, end: datetime, *, by: str) -> list[tuple[str, int, int, int, Decimal]]:
    """(key, runs, tokens in, tokens out, cost) per feature (`by="feature"`) or per requester (`by="person"`)."""
    keys = (AIRun.feature,) if by == "feature" else (AIRun.requested_by_type, AIRun.requested_by_id)
    rows = uow.session.execute(
        select(*keys, func.count(), func.coalesce(func.sum(AIRun.tokens_in), 0),
               func.coalesce(func.sum(AIRun.tokens_out), 0), func.coalesce(func.sum(AIRun.cost), 0))
        .where(AIRun.created_at >= start, AIRun.created_at < end).group_by(*keys).order_by(*keys))
    return [(":".join(str(k) for k in row[:-4]), int(row[-4]), int(row[-3]), int(row[-2]), Decimal(str(row[-1])))
            for row in rows]


def claim_for_apply(uow: UnitOfWork, run_id: str) -> bool:
    """Mark a succeeded run applied, if nobody else did: the apply that moves it owns the writes."""
    result = uow.session.execute(update(AIRun).where(AIRun.id == run_id, AIRun.status == "succeeded")
                                 .values(status="applied").execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_queued(uow: UnitOfWork, run_id: str) -> bool:
    """A queued run becomes running once: a redelivered job finds it taken and does nothing."""
    result = uow.session.execute(update(AIRun).where(AIRun.id == run_id, AIRun.status == "queued")
                                 .values(status="running").execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unclaim(uow: UnitOfWork, run_id: str) -> None:
    """An apply whose write failed gives the run back (succeeded again)."""
    uow.session.execute(update(AIRun).where(AIRun.id == run_id, AIRun.status == "applied", AIRun.applied_at.is_(None))
                        .values(status="succeeded").execution_options(synchronize_session=False))
