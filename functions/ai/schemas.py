"""AI schemas: the features' requests, each task's output (what a provider must fill), runs, settings, usage."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from layers.records.search import FilterGroup
from shared.schemas import Page, RecordId, StrictModel

Feature = Literal["summary", "lead_score", "next_action", "draft_email", "nl_search"]
FEATURES: tuple[str, ...] = ("summary", "lead_score", "next_action", "draft_email", "nl_search")
RunStatus = Literal["queued", "running", "succeeded", "failed", "applied"]
ProviderName = Literal["local", "openai", "gemini"]
SummaryObject = Literal["contacts", "companies", "deals"]
SearchObject = Literal["contacts", "companies", "deals"]


# ---- task outputs (the schema a provider's answer must fill) -----------------------------------------
class AISummaryOutput(BaseModel):
    summary: str = Field(max_length=4000)
    citations: list[str] = Field(default_factory=list, max_length=50,
                                 description="Ids of the timeline items (activities, history) the summary used")


class AIScoreFactor(BaseModel):
    name: str = Field(max_length=64)
    weight: int = Field(ge=-100, le=100, description="Points this factor added (or took away)")
    evidence: str = Field(max_length=300)


class AILeadScoreOutput(BaseModel):
    score: int = Field(ge=0, le=100)
    factors: list[AIScoreFactor] = Field(default_factory=list, max_length=20)


class AINextActionOutput(BaseModel):
    title: str = Field(min_length=1, max_length=255, description="The suggested task's subject")
    due_date: date = Field(description="When the task should be due (UTC date)")
    priority: Literal["low", "normal", "high"] = "normal"
    reason: str = Field(max_length=500)


class AIDraftEmailOutput(BaseModel):
    subject: str = Field(min_length=1, max_length=255)
    body: str = Field(min_length=1, max_length=10_000)


class AISearchOutput(BaseModel):
    object_type: SearchObject
    filter_groups: list[FilterGroup] = Field(default_factory=list, max_length=5)
    query: str | None = Field(None, max_length=200)
    notes: list[str] = Field(default_factory=list, max_length=10,
                             description="Parts of the question the search language could not express")


# ---- feature requests ------------------------------------------------------------------------------
class AISummaryCreate(StrictModel):
    object_type: SummaryObject
    record_id: RecordId


class AILeadScoreCreate(StrictModel):
    contact_id: RecordId


class AINextActionCreate(StrictModel):
    deal_id: RecordId


class AIDraftEmailCreate(StrictModel):
    object_type: Literal["contacts", "deals"]
    record_id: RecordId


class AISearchCreate(StrictModel):
    question: str = Field(min_length=1, max_length=500, description="e.g. \"CTOs at companies in Berlin created "
                          "this month\"")
    object_type: SearchObject | None = Field(None, description="Default: what the question names, else contacts")


class AIFeatureQuery(StrictModel):
    async_: bool = Field(False, alias="async")


class AISearchQuery(StrictModel):
    run: bool = False


class AIApply(StrictModel):
    output: dict[str, Any] | None = Field(None, description="An edited suggestion (same shape as the run's output); "
                                          "default: the output as the run produced it")
    assignee_id: RecordId | None = Field(None, description="next_action: who the task is for (default: the deal's "
                                         "owner, else you)")


# ---- runs ------------------------------------------------------------------------------------------
class AIRunInput(BaseModel):
    object_type: str
    record_id: str
    fields: list[str] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list, description="Timeline item ids read")


class AIRunActor(BaseModel):
    type: str
    id: str


class AIRunRead(BaseModel):
    id: str
    feature: Feature
    status: RunStatus
    requested_by: AIRunActor
    object_type: str | None
    record_id: str | None
    inputs: list[AIRunInput]
    provider: str | None
    model: str | None
    prompt_version: str
    tokens_in: int
    tokens_out: int
    cost: str = Field(description="Decimal, in `currency`")
    currency: str
    latency_ms: int | None
    output: dict[str, Any] | None
    dropped_citations: int = Field(description="Citations dropped: not among the items the caller may read")
    error: str | None
    raw_text: str | None = Field(description="Failed runs: the provider's last raw answer, for inspection")
    attempts: list[dict[str, Any]]
    created_at: datetime
    finished_at: datetime | None
    applied_at: datetime | None
    applied_by: AIRunActor | None
    applied: dict[str, Any] | None = Field(description="What apply wrote (record ids)")


class AIRunPage(Page[AIRunRead]):
    pass


class AIRunListQuery(StrictModel):
    feature: Feature | None = None
    status: RunStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class AISearchResult(BaseModel):
    run: AIRunRead
    object_type: SearchObject
    filter_groups: list[FilterGroup]
    results: dict[str, Any] | None = Field(None, description="With ?run=true: the search's first page")


# ---- settings and usage --------------------------------------------------------------------------
class AIModelChoice(StrictModel):
    provider: ProviderName
    model: str = Field(min_length=1, max_length=64)


class AIAutoApply(StrictModel):
    lead_score: bool = Field(True, description="The score is a read-only field: stored without apply by default")
    next_action: bool = False


class AISettingsUpdate(StrictModel):
    providers: list[AIModelChoice] = Field(default_factory=list, max_length=6,
                                           description="Enabled providers and models; empty: local only")
    primary: ProviderName | None = Field(None, description="Tried first; default: the first enabled provider")
    monthly_budget: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=4)
    budget_currency: str = Field("USD", pattern="^[A-Z]{3}$")
    auto_apply: AIAutoApply = Field(default_factory=AIAutoApply)


class AISettingsRead(BaseModel):
    providers: list[AIModelChoice]
    primary: str
    monthly_budget: str | None = Field(description="Decimal, in budget_currency; null: no budget")
    budget_currency: str
    auto_apply: AIAutoApply
    configured_providers: list[str] = Field(description="Providers this server has keys for (local always)")
    updated_at: datetime | None


class AIUsageQuery(StrictModel):
    month: str | None = Field(None, pattern=r"^(19\d{2}|2\d{3})-(0[1-9]|1[0-2])$",
                              description="YYYY-MM (default: this month)")


class AIUsageLine(BaseModel):
    key: str
    runs: int
    tokens_in: int
    tokens_out: int
    cost: str


class AIUsageRead(BaseModel):
    month: str
    currency: str
    monthly_budget: str | None
    total_cost: str
    runs: int
    by_feature: list[AIUsageLine]
    by_person: list[AIUsageLine] = Field(description="key: actor type and id, e.g. `user:01H…`")


# ---- jobs ------------------------------------------------------------------------------------------
class AIRunJob(BaseModel):
    """Finish a queued run in the worker tier, as the person who asked (their visibility included)."""

    workspace_id: str
    run_id: str
    actor_type: str
    actor_id: str
    role: str
    scopes: list[str] = Field(default_factory=list)
    visible_owner_ids: list[str] | None = None
