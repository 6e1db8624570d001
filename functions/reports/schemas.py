"""Report queries and answers. Amounts are exact decimals written as strings, per ISO 4217 currency."""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.schemas import StrictModel


# ---- queries --------------------------------------------------------------------------------------------
class PipelineSummaryQuery(StrictModel):
    pipeline_id: str | None = Field(None, max_length=26)


class RangeQuery(StrictModel):
    from_: date | None = Field(None, alias="from")
    to: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RangeQuery:
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise ValueError("`from` must not be after `to`")
        return self


class ForecastQuery(RangeQuery):
    pipeline_id: str | None = Field(None, max_length=26)


class WinRateQuery(RangeQuery):
    pipeline_id: str | None = Field(None, max_length=26)


class ActivityReportQuery(RangeQuery):
    pass


# ---- answers --------------------------------------------------------------------------------------------
class ReportModel(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)


class CurrencyAmount(ReportModel):
    currency: str = Field(description="ISO 4217")
    count: int = Field(description="Deals with an amount in this currency")
    amount: str = Field(description="Exact sum as a decimal string, in the currency's minor units (more places only "
                                    "when the value has them)")


class StageSummary(ReportModel):
    stage_id: str
    name: str
    kind: Literal["open", "won", "lost"]
    position: int
    probability: str = Field(description="Win probability 0..1 as a decimal string, as pipelines show it")
    count: int = Field(description="Every deal in the stage, with or without an amount")
    amounts: list[CurrencyAmount] = Field(description="Per currency; empty for a stage without valued deals")


class PipelineSummary(ReportModel):
    pipeline_id: str
    count: int
    totals: list[CurrencyAmount] = Field(description="The whole pipeline, per currency")
    stages: list[StageSummary] = Field(description="Every stage in board order, empty ones included")


class ForecastMonth(ReportModel):
    month: str = Field(description="Expected close month, YYYY-MM")
    currency: str
    count: int
    amount: str = Field(description="Unweighted exact sum")
    weighted_amount: str = Field(description="Sum of amount × stage probability, exact (it may need more places "
                                             "than the currency has)")


class Forecast(ReportModel):
    pipeline_id: str | None = Field(description="null: every pipeline")
    from_: date | None = Field(serialization_alias="from")
    to: date | None
    months: list[ForecastMonth] = Field(description="Months with open valued deals, oldest first; per currency")


class WinRate(ReportModel):
    pipeline_id: str | None = Field(description="null: every pipeline")
    from_: date = Field(serialization_alias="from")
    to: date
    won: int = Field(description="Deals closed as won in the range (by closed_at)")
    lost: int = Field(description="Deals closed as lost in the range (by closed_at)")
    win_rate: str | None = Field(description="won / (won + lost), four places; null when none closed")
    average_sales_cycle_days: str | None = Field(description="Won deals: mean of closed_at − created_at, in days")
    won_amounts: list[CurrencyAmount]


class ActivityCount(ReportModel):
    owner_id: str | None
    kind: str
    count: int


class ActivityReport(ReportModel):
    from_: date = Field(serialization_alias="from")
    to: date
    data: list[ActivityCount] = Field(description="One row per owner and kind with at least one activity")
    total: int
