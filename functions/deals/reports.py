"""Deal aggregates for the reports capability, computed by the database with GROUP BY.

Only aggregates leave the database: one row per stage × currency, per month × currency or per
outcome — never one per deal. Every statement is an ORM select on `Deal` (and `Stage`), so the unit
of work adds the workspace filter and, for members limited to their team's records, the owner filter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Executable, Integer, Numeric, TypeDecorator, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from functions.deals.currencies import minor_units
from functions.deals.models import Deal
from functions.deals.rules import STORED_PLACES
from functions.pipelines.models import Pipeline, Stage
from layers.db.uow import UnitOfWork
from shared.errors import NotFound


# ---- dialect-aware SQL ----------------------------------------------------------------------------------
class year_month(FunctionElement[int]):  # noqa: N801 - SQL function naming
    """A date's calendar month as the integer YYYYMM (202603), so it groups and sorts as a number."""

    type = Integer()
    inherit_cache = True
    name = "year_month"


@compiles(year_month)
def _year_month_sqlite(element: year_month, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%Y%m', {compiler.process(list(element.clauses)[0], **kw)}) AS INTEGER)"


@compiles(year_month, "mysql")
@compiles(year_month, "mariadb")
def _year_month_mysql(element: year_month, compiler: SQLCompiler, **kw: Any) -> str:
    # No format string: a literal '%' would have to be escaped for the driver's paramstyle.
    return f"EXTRACT(YEAR_MONTH FROM {compiler.process(list(element.clauses)[0], **kw)})"


class seconds_between(FunctionElement[int]):  # noqa: N801
    """Whole seconds from the first datetime to the second."""

    type = Integer()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(ROUND((julianday({end}) - julianday({start})) * 86400) AS INTEGER)"


@compiles(seconds_between, "mysql")
@compiles(seconds_between, "mariadb")
def _seconds_mysql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"TIMESTAMPDIFF(SECOND, {start}, {end})"


class ExactProduct(TypeDecorator[Decimal]):
    """What `weighted` answers: DECIMAL on MySQL/MariaDB; whole hundred-millionths on SQLite."""

    impl = Numeric(38, 8)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-8)
        return value if isinstance(value, Decimal) else Decimal(str(value))


class weighted(FunctionElement[Decimal]):  # noqa: N801
    """amount × probability, exactly: both have four places, the product has eight."""

    type = ExactProduct()
    inherit_cache = True
    name = "weighted"


@compiles(weighted)
def _weighted_sqlite(element: weighted, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps amounts as whole ten-thousandths (layers.db.base.Money) and probabilities as floats:
    # scaling the probability to ten-thousandths too keeps the product, and its SUM(), in integers.
    amount, probability = (compiler.process(c, **kw) for c in element.clauses)
    return f"({amount} * CAST(ROUND({probability} * 10000) AS INTEGER))"


@compiles(weighted, "mysql")
@compiles(weighted, "mariadb")
def _weighted_mysql(element: weighted, compiler: SQLCompiler, **kw: Any) -> str:
    amount, probability = (compiler.process(c, **kw) for c in element.clauses)
    return f"({amount} * {probability})"


# ---- what the reports get back -----------------------------------------------------------------------
@dataclass(frozen=True)
class Money:
    currency: str
    count: int
    amount: Decimal


@dataclass(frozen=True)
class StageTotals:
    stage_id: str
    name: str
    kind: str
    position: int
    probability: Decimal
    count: int  # every deal in the stage, with or without an amount
    amounts: list[Money] = field(default_factory=list)  # deals with an amount, per currency


@dataclass(frozen=True)
class PipelineTotals:
    pipeline_id: str
    stages: list[StageTotals]


@dataclass(frozen=True)
class MonthForecast:
    year_month: int  # YYYYMM
    currency: str
    count: int
    amount: Decimal
    weighted_amount: Decimal  # Σ amount × stage probability


@dataclass(frozen=True)
class Outcomes:
    won: int
    lost: int
    average_cycle_seconds: Decimal | None  # won deals: closed_at − created_at, averaged by the database
    won_amounts: list[Money]


def currency_places(currency: str) -> int:
    """Decimal places amounts of `currency` are shown with (as the deals API shows them)."""
    places = minor_units(currency)
    return STORED_PLACES if places is None else places


# ---- the queries -------------------------------------------------------------------------------------
def resolve_pipeline(uow: UnitOfWork, pipeline_id: str | None) -> str:
    """The named live pipeline, or the workspace's default one; 404 when there is none."""
    statement = select(Pipeline.id).where(Pipeline.archived_at.is_(None))
    if pipeline_id is not None:
        statement = statement.where(Pipeline.id == pipeline_id)
    else:
        statement = statement.where(Pipeline.is_default.is_(True)).order_by(Pipeline.id)
    found = uow.session.scalars(statement.limit(1)).first()
    if found is None:
        raise NotFound(f"no pipeline with id {pipeline_id}" if pipeline_id else "the workspace has no default pipeline")
    return found


def pipeline_summary(uow: UnitOfWork, *, pipeline_id: str | None) -> PipelineTotals:
    """Count and amount per stage per currency, every live stage in board order (empty ones too)."""
    resolved = resolve_pipeline(uow, pipeline_id)
    stages = uow.session.execute(
        select(Stage.id, Stage.name, Stage.kind, Stage.position, Stage.probability)
        .where(Stage.pipeline_id == resolved, Stage.archived_at.is_(None))
        .order_by(Stage.position, Stage.id)
    ).all()
    grouped = _aggregate(uow, (
        select(Deal.stage_id, Deal.currency, func.count(), func.count(Deal.amount), func.sum(Deal.amount))
        .where(Deal.pipeline_id == resolved, Deal.archived_at.is_(None))
        .group_by(Deal.stage_id, Deal.currency)
    ))
    counts: dict[str, int] = {}
    amounts: dict[str, list[Money]] = {}
    for stage_id, currency, count, valued, total in grouped:
        counts[stage_id] = counts.get(stage_id, 0) + count
        if currency is not None and valued:
            amounts.setdefault(stage_id, []).append(Money(currency, valued, total))
    return PipelineTotals(resolved, [
        StageTotals(stage_id, name, kind, position, Decimal(probability), counts.get(stage_id, 0),
                    sorted(amounts.get(stage_id, []), key=lambda m: m.currency))
        for stage_id, name, kind, position, probability in stages
    ])


def forecast(
    uow: UnitOfWork, *, pipeline_id: str | None, start: date | None, end: date | None
) -> list[MonthForecast]:
    """Open deals with an amount and an expected close date, weighted by their stage's probability."""
    month = year_month(Deal.expected_close_date)
    statement = (
        select(month, Deal.currency, func.count(), func.sum(Deal.amount),
               func.sum(weighted(Deal.amount, Stage.probability), type_=ExactProduct()))
        .join(Stage, Stage.id == Deal.stage_id)
        .where(Stage.kind == "open", Deal.archived_at.is_(None), Deal.expected_close_date.is_not(None),
               Deal.amount.is_not(None), Deal.currency.is_not(None))
        .group_by(month, Deal.currency)
        .order_by(month, Deal.currency)
    )
    if pipeline_id is not None:
        statement = statement.where(Deal.pipeline_id == resolve_pipeline(uow, pipeline_id))
    if start is not None:
        statement = statement.where(Deal.expected_close_date >= start)
    if end is not None:
        statement = statement.where(Deal.expected_close_date <= end)
    return [MonthForecast(int(ym), currency, count, total, weighted_total)
            for ym, currency, count, total, weighted_total in _aggregate(uow, statement)]


def outcomes(uow: UnitOfWork, *, pipeline_id: str | None, start: datetime, end: datetime) -> Outcomes:
    """Deals closed in [start, end): won and lost counts, average sales cycle of the won ones, won amounts."""
    conditions: list[ColumnElement[bool]] = [
        Stage.kind.in_(("won", "lost")), Deal.archived_at.is_(None), Deal.closed_at >= start, Deal.closed_at < end]
    if pipeline_id is not None:
        conditions.append(Deal.pipeline_id == resolve_pipeline(uow, pipeline_id))
    cycle = seconds_between(Deal.created_at, Deal.closed_at)
    by_kind = {kind: (count, average) for kind, count, average in uow.session.execute(
        select(Stage.kind, func.count(), func.avg(cycle))
        .join(Stage, Stage.id == Deal.stage_id).where(*conditions).group_by(Stage.kind))}
    won_amounts = [Money(currency, count, total) for currency, count, total in _aggregate(uow, (
        select(Deal.currency, func.count(), func.sum(Deal.amount))
        .join(Stage, Stage.id == Deal.stage_id)
        .where(*conditions, Stage.kind == "won", Deal.amount.is_not(None), Deal.currency.is_not(None))
        .group_by(Deal.currency).order_by(Deal.currency)))]
    won, average = by_kind.get("won", (0, None))
    return Outcomes(won=won, lost=by_kind.get("lost", (0, None))[0],
                    average_cycle_seconds=None if average is None else Decimal(str(average)),
                    won_amounts=won_amounts)


def _aggregate(uow: UnitOfWork, statement: Executable) -> list[Any]:
    """The rows of an aggregate query (the WHERE clauses rule out the NULLs its column types allow)."""
    return list(uow.session.execute(statement).all())
