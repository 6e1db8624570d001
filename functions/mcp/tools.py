"""The MCP tools: each one is a REST route's use case, called through the same service function with the
same pydantic model (its JSON Schema is the tool's input schema, its validation the tool's validation).

A tool is data (name, description, input model, permission, run): the server in functions/mcp/server.py
authorises, rate-limits, validates and translates errors once for all of them, as the HTTP middleware
does for the routes.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from functions.activities.schemas import ActivityCreate, TimelineQuery
from functions.activities.service import TIMELINE_TYPES, activities
from functions.companies.service import companies
from functions.contacts.service import contacts
from functions.deals.schemas import StageMove
from functions.deals.service import deals
from functions.reports import service as reports
from functions.reports.schemas import ActivityReportQuery, ForecastQuery, PipelineSummaryQuery, WinRateQuery
from layers.records.search import SearchRequest
from layers.records.service import RecordService
from shared.context import Scope
from shared.schemas import RecordId, StrictModel

Permission = Literal["read", "write"]
RECORD_SERVICES: dict[str, RecordService] = {"contacts": contacts, "companies": companies, "deals": deals}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    model: type[BaseModel]
    permission: Permission  # the same words as a route's `@endpoint(permission=...)`
    run: Callable[[Scope, Any], Any]  # (scope, validated model) → JSON text, a pydantic model or plain data

    def input_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema(by_alias=True)


class RecordRef(StrictModel):
    id: RecordId = Field(description="The record's id")


class TimelineRequest(TimelineQuery):
    object_type: Literal["contacts", "companies", "deals"] = Field(description="The kind of record")
    record_id: RecordId = Field(description="The record whose timeline to read")


class DealStageMove(StageMove):
    deal_id: RecordId = Field(description="The deal to move")


class AgentActivityCreate(ActivityCreate):
    """ActivityCreate, narrowed to what agents may log: notes and tasks."""

    kind: Literal["note", "task"]  # type: ignore[assignment]


def _search_tool(object_type: str, service: RecordService) -> Tool:
    return Tool(
        name=f"search_{object_type}",
        description=(f"Search {object_type} with the API's search language (the body of POST /v1/{object_type}/"
                     "search): filter_groups (OR of AND-groups of property filters), full-text query, sorts, "
                     "limit and cursor. Returns a page: data and next_cursor."),
        model=SearchRequest, permission="read",
        run=lambda scope, request: service.search(scope, request))


def _get_tool(object_type: str, service: RecordService) -> Tool:
    return Tool(
        name=f"get_{SINGULAR[object_type]}",
        description=f"Read one {SINGULAR[object_type]} by id (GET /v1/{object_type}/{{id}}).",
        model=RecordRef, permission="read",
        run=lambda scope, ref: service.get(scope, ref.id).body)


def _timeline(scope: Scope, request: TimelineRequest) -> str:
    return activities.timeline(scope, request.object_type, request.record_id, limit=request.limit,
                               cursor=request.cursor, kinds=request.kinds)


def _create_activity(scope: Scope, data: AgentActivityCreate) -> str:
    # The service reads the model's fields; validate again as the REST model so every rule of the route holds.
    return activities.create(scope, ActivityCreate.model_validate(data.model_dump(exclude_unset=True))).body


def _move_stage(scope: Scope, move: DealStageMove) -> str:
    data = StageMove.model_validate(move.model_dump(exclude={"deal_id"}, exclude_unset=True))
    return deals.move_stage(scope, move.deal_id, data, expected_version=None).body


def _report_tools() -> list[Tool]:
    return [
        Tool("report_pipeline_summary", "Deals per stage of a pipeline: count and amount per currency "
             "(GET /v1/reports/pipeline-summary; default: the default pipeline).",
             PipelineSummaryQuery, "read", reports.pipeline_summary),
        Tool("report_forecast", "Weighted forecast by expected close month (amount × stage probability, open "
             "stages) (GET /v1/reports/forecast). Dates are YYYY-MM-DD, UTC.",
             ForecastQuery, "read", reports.forecast),
        Tool("report_win_rate", "Win rate and average sales cycle of deals closed in a date range (default: the "
             "last 90 days) (GET /v1/reports/win-rate).", WinRateQuery, "read", reports.win_rate),
        Tool("report_activities", "Activity counts per owner and kind in a date range (default: the last 90 "
             "days) (GET /v1/reports/activities).", ActivityReportQuery, "read", reports.activity_counts),
    ]


def _summary_tool() -> Tool:
    """The AI capability's summary: the body of POST /v1/ai/summaries, run while the agent waits and recorded as
    an AI run (the run, with its citations, is the answer)."""
    from functions.ai import service as ai
    from functions.ai.schemas import AISummaryCreate

    def summarize(scope: Scope, data: AISummaryCreate) -> str:
        return ai.start_run(scope, feature="summary", object_type=data.object_type, record_id=data.record_id,
                            wait=True).body

    return Tool("summarize_record", "An AI summary of a contact, company or deal from its fields and timeline, "
                "citing the activity and history ids it used. Recorded as an AI run.", AISummaryCreate, "read",
                summarize)


def build_tools() -> dict[str, Tool]:
    tools: list[Tool] = []
    for object_type, service in RECORD_SERVICES.items():
        tools += [_search_tool(object_type, service), _get_tool(object_type, service)]
    tools += [
        Tool("get_timeline", "A contact's, company's or deal's timeline: activities and field history, newest "
             f"first (GET /v1/{{object}}/{{id}}/timeline; object one of {', '.join(TIMELINE_TYPES)}). kinds is "
             "comma-separated: note, task, call, meeting, email, history.",
             TimelineRequest, "read", _timeline),
        Tool("create_activity", "Log a note (body required) or create a task (subject required; owner_id, the "
             "assignee, is required for API keys) linked to contacts, companies and deals "
             "(POST /v1/activities).", AgentActivityCreate, "write", _create_activity),
        Tool("move_deal_stage", "Move a deal to a stage of its pipeline; a lost stage needs lost_reason "
             "(POST /v1/deals/{id}/stage).", DealStageMove, "write", _move_stage),
        *_report_tools(),
    ]
    tools.append(_summary_tool())
    return {tool.name: tool for tool in tools}


def as_json(result: Any) -> str:
    """A service's answer as JSON text: record services already answer JSON; reports answer models."""
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()  # as the REST route renders it (layers/http/requests.json_response)
    return json.dumps(result, separators=(",", ":"), default=str)

