"""Reports: each one asks the capability that owns the data for its aggregates, inside one unit of work
(so workspace and record-level visibility apply), and shapes the answer."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from functions.activities import reports as activity_reports
from functions.deals import reports as deal_reports
from functions.reports import rules
from functions.reports.schemas import (
    ActivityCount,
    ActivityReport,
    ActivityReportQuery,
    CurrencyAmount,
    Forecast,
    ForecastMonth,
    ForecastQuery,
    PipelineSummary,
    PipelineSummaryQuery,
    StageSummary,
    WinRate,
    WinRateQuery,
)
from layers.db.uow import UnitOfWork
from shared.clock import utcnow
from shared.context import Scope


def pipeline_summary(scope: Scope, query: PipelineSummaryQuery) -> PipelineSummary:
    with UnitOfWork(scope) as uow:
        totals = deal_reports.pipeline_summary(uow, pipeline_id=query.pipeline_id)
    overall: dict[str, list[int | Decimal]] = defaultdict(lambda: [0, Decimal(0)])
    for stage in totals.stages:
        for money in stage.amounts:
            overall[money.currency][0] += money.count
            overall[money.currency][1] += money.amount
    return PipelineSummary(
        pipeline_id=totals.pipeline_id,
        count=sum(stage.count for stage in totals.stages),
        totals=[_total(currency, int(count), Decimal(amount)) for currency, (count, amount) in sorted(overall.items())],
        stages=[StageSummary(stage_id=s.stage_id, name=s.name, kind=s.kind, position=s.position,  # type: ignore[arg-type]
                             probability=format(s.probability.normalize(), "f"), count=s.count,
                             amounts=[_total(m.currency, m.count, m.amount) for m in s.amounts])
                for s in totals.stages],
    )


def forecast(scope: Scope, query: ForecastQuery) -> Forecast:
    with UnitOfWork(scope) as uow:
        months = deal_reports.forecast(uow, pipeline_id=query.pipeline_id, start=query.from_, end=query.to)
    return Forecast(pipeline_id=query.pipeline_id, from_=query.from_, to=query.to, months=[
        ForecastMonth(month=rules.month_label(m.year_month), currency=m.currency, count=m.count,
                      amount=_exact(m.amount, m.currency), weighted_amount=_exact(m.weighted_amount, m.currency))
        for m in months])


def win_rate(scope: Scope, query: WinRateQuery) -> WinRate:
    start, end = rules.default_range(query.from_, query.to, today=utcnow().date())
    low, high = rules.utc_bounds(start, end)
    with UnitOfWork(scope) as uow:
        outcomes = deal_reports.outcomes(uow, pipeline_id=query.pipeline_id, start=low, end=high)
    rate = rules.win_rate(outcomes.won, outcomes.lost)
    cycle = rules.days(outcomes.average_cycle_seconds)
    return WinRate(pipeline_id=query.pipeline_id, from_=start, to=end, won=outcomes.won, lost=outcomes.lost,
                   win_rate=None if rate is None else str(rate),
                   average_sales_cycle_days=None if cycle is None else str(cycle),
                   won_amounts=[_total(m.currency, m.count, m.amount) for m in outcomes.won_amounts])


def activity_counts(scope: Scope, query: ActivityReportQuery) -> ActivityReport:
    start, end = rules.default_range(query.from_, query.to, today=utcnow().date())
    low, high = rules.utc_bounds(start, end)
    with UnitOfWork(scope) as uow:
        rows = activity_reports.counts_by_owner_and_kind(uow, start=low, end=high)
    return ActivityReport(from_=start, to=end, total=sum(r.count for r in rows),
                          data=[ActivityCount(owner_id=r.owner_id, kind=r.kind, count=r.count) for r in rows])


def _total(currency: str, count: int, amount: Decimal) -> CurrencyAmount:
    return CurrencyAmount(currency=currency, count=count, amount=_exact(amount, currency))


def _exact(amount: Decimal, currency: str) -> str:
    return rules.exact_text(amount, deal_reports.currency_places(currency))
