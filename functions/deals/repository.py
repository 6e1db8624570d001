"""Deal queries beyond the record machinery: board aggregates, stage occupants, stage changes.

Every statement is an ORM select on `Deal` / `DealStageChange`, so the unit of work adds the workspace
filter and, for members limited to their team's records, the owner filter.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from functions.deals.models import Deal, DealStageChange


def stage_totals(session: Session, pipeline_id: str) -> dict[str, tuple[int, dict[str, Decimal]]]:
    """stage id → (live deals, {currency: sum of amounts}), grouped by the database (ix_deals_board)."""
    rows = session.execute(
        select(Deal.stage_id, Deal.currency, func.count(Deal.id), func.sum(Deal.amount))
        .where(Deal.pipeline_id == pipeline_id, Deal.archived_at.is_(None))
        .group_by(Deal.stage_id, Deal.currency)
    )
    totals: dict[str, tuple[int, dict[str, Decimal]]] = {}
    for stage_id, currency, count, total in rows:
        held, amounts = totals.get(stage_id, (0, {}))
        if currency is not None and total is not None:
            amounts[currency] = total
        totals[stage_id] = (held + count, amounts)
    return totals


def column_select(pipeline_id: str, stage_id: str) -> Select[Any]:
    """The live deals of one board column (the caller adds the order and the page)."""
    return (
        select(Deal)
        # MariaDB would intersect ix_deals_list with ix_deals_board and sort the whole stage (~140 ms for
        # 20,000 deals in a stage); walking ix_deals_board backwards reads just the page (~7 ms).
        .with_hint(Deal, "FORCE INDEX (ix_deals_board)", "mysql")
        .with_hint(Deal, "FORCE INDEX (ix_deals_board)", "mariadb")
        .where(Deal.pipeline_id == pipeline_id, Deal.stage_id == stage_id, Deal.archived_at.is_(None))
    )


def count_in_stages(session: Session, stage_ids: list[str], *, include_archived: bool) -> int:
    statement = select(func.count(Deal.id)).where(Deal.stage_id.in_(stage_ids))
    if not include_archived:
        statement = statement.where(Deal.archived_at.is_(None))
    return int(session.scalar(statement) or 0)


def deals_in_stage(session: Session, stage_id: str) -> list[Deal]:
    """Every deal in the stage (archived ones too), locked for the move."""
    return list(session.scalars(select(Deal).where(Deal.stage_id == stage_id).order_by(Deal.id).with_for_update()))


def stage_changes_page(session: Session, deal_id: str, *, before_id: str | None, limit: int) -> list[DealStageChange]:
    """Newest first: `limit + 1` rows, so the caller knows if more follow."""
    statement = (
        select(DealStageChange)
        .where(DealStageChange.deal_id == deal_id)
        .order_by(DealStageChange.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        statement = statement.where(DealStageChange.id < before_id)
    return list(session.scalars(statement))
