"""AI features on the records the caller may read, their recorded runs, apply, settings and usage.

Every feature answers a run: 200 when it finished while the request waited (≤ 10 s per attempt), 202 with
`?async=true`, finished by the worker tier (≤ 60 s). Nothing is written to a record without an apply (or the
workspace's auto-apply for that feature)."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.ai import service
from functions.ai.schemas import (
    AIApply,
    AIDraftEmailCreate,
    AIFeatureQuery,
    AILeadScoreCreate,
    AINextActionCreate,
    AIRunListQuery,
    AIRunPage,
    AIRunRead,
    AISearchCreate,
    AISearchQuery,
    AISearchResult,
    AISettingsRead,
    AISettingsUpdate,
    AISummaryCreate,
    AIUsageQuery,
    AIUsageRead,
)
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import json_response, parse_body, parse_query, scope_of

bp = Blueprint(__name__)
TAG = "AI"
ASYNC_PARAM = QueryParam("async", {"type": "boolean", "default": False},
                         "Answer 202 with the queued run at once; the worker tier finishes it")
RUN_PARAM = QueryParam("run", {"type": "boolean", "default": False}, "Also run the search and return its first page")
FEATURE_PARAM = QueryParam("feature", {"type": "string", "enum": ["summary", "lead_score", "next_action",
                                                                  "draft_email", "nl_search"]}, "Only this feature")
RUN_STATUS_PARAM = QueryParam("status", {"type": "string", "enum": ["queued", "running", "succeeded", "failed",
                                                                    "applied"]}, "Only runs in this state")
MONTH_PARAM = QueryParam("month", {"type": "string", "pattern": r"^(19\d{2}|2\d{3})-(0[1-9]|1[0-2])$"},
                         "YYYY-MM (default: this month, UTC)")
# 502 (AIFailed) belongs here once layers/http/openapi.py knows the status (ai-layer branch)
FEATURE_ERRORS = (400, 404, 422, 429)


def _started(feature: str, object_type: str, record_id: str) -> Response:
    request = bp.current_request
    wait = not parse_query(request, AIFeatureQuery).async_
    started = service.start_run(scope_of(request), feature=feature, object_type=object_type, record_id=record_id,
                                wait=wait)
    return json_response(started.body, started.status)


@bp.route("/v1/ai/summaries", methods=["POST"], name="ai_summaries_create")
@endpoint(summary="Summarise a contact, company or deal from its fields and timeline, citing the items used",
          permission="read", tag=TAG, request=AISummaryCreate, response=AIRunRead, errors=FEATURE_ERRORS,
          query=(ASYNC_PARAM,), extra_responses={202: "Queued: the worker tier finishes the run"})
def create_summary() -> Response:
    data = parse_body(bp.current_request, AISummaryCreate)
    return _started("summary", data.object_type, data.record_id)


@bp.route("/v1/ai/lead-scores", methods=["POST"], name="ai_lead_scores_create")
@endpoint(summary="Score a contact as a lead (0-100, with its factors); stored as ai_score when applied or "
                  "auto-applied", permission="read", tag=TAG, request=AILeadScoreCreate, response=AIRunRead,
          errors=FEATURE_ERRORS, query=(ASYNC_PARAM,), extra_responses={202: "Queued"})
def create_lead_score() -> Response:
    data = parse_body(bp.current_request, AILeadScoreCreate)
    return _started("lead_score", "contacts", data.contact_id)


@bp.route("/v1/ai/next-actions", methods=["POST"], name="ai_next_actions_create")
@endpoint(summary="Suggest a deal's next best action as a task (apply the run to create it)", permission="read",
          tag=TAG, request=AINextActionCreate, response=AIRunRead, errors=FEATURE_ERRORS, query=(ASYNC_PARAM,),
          extra_responses={202: "Queued"})
def create_next_action() -> Response:
    data = parse_body(bp.current_request, AINextActionCreate)
    return _started("next_action", "deals", data.deal_id)


@bp.route("/v1/ai/email-drafts", methods=["POST"], name="ai_email_drafts_create")
@endpoint(summary="Draft a follow-up email for a contact or deal (never sent by the system)", permission="read",
          tag=TAG, request=AIDraftEmailCreate, response=AIRunRead, errors=FEATURE_ERRORS, query=(ASYNC_PARAM,),
          extra_responses={202: "Queued"})
def create_email_draft() -> Response:
    data = parse_body(bp.current_request, AIDraftEmailCreate)
    return _started("draft_email", data.object_type, data.record_id)


@bp.route("/v1/ai/searches", methods=["POST"], name="ai_searches_create")
@endpoint(summary="Translate a question into the search language's filter_groups (and run it with ?run=true)",
          permission="read", tag=TAG, request=AISearchCreate, response=AISearchResult, errors=FEATURE_ERRORS,
          query=(RUN_PARAM,))
def create_search() -> Response:
    request = bp.current_request
    data, query = parse_body(request, AISearchCreate), parse_query(request, AISearchQuery)
    return json_response(service.search(scope_of(request), question=data.question, object_type=data.object_type,
                                        run_search=query.run))


@bp.route("/v1/ai/runs", methods=["GET"], name="ai_runs_list")
@endpoint(summary="AI runs, newest first (admins: the workspace's; others: their own)", permission="read", tag=TAG,
          response=AIRunPage, errors=(422,), query=(FEATURE_PARAM, RUN_STATUS_PARAM, LIMIT_PARAM, CURSOR_PARAM))
def list_runs() -> Response:
    request = bp.current_request
    query = parse_query(request, AIRunListQuery)
    return json_response(service.list_runs(scope_of(request), feature=query.feature, status=query.status,
                                           limit=query.limit, cursor=query.cursor))


@bp.route("/v1/ai/runs/{run_id}", methods=["GET"], name="ai_runs_get")
@endpoint(summary="One AI run: who asked, what it read, provider, cost, output", permission="read", tag=TAG,
          response=AIRunRead, errors=(404,))
def get_run(run_id: str) -> Response:
    return json_response(service.get_run(scope_of(bp.current_request), run_id))


@bp.route("/v1/ai/runs/{run_id}/apply", methods=["POST"], name="ai_runs_apply")
@endpoint(summary="Write a run's suggestion (optionally edited) to its record, with source \"ai\"",
          permission="write", tag=TAG, request=AIApply, response=AIRunRead, errors=(400, 404, 409, 422),
          body_required=False)
def apply_run(run_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, AIApply) if request.raw_body else AIApply()
    return json_response(service.apply_run(scope_of(request), run_id, edited=data.output,
                                           assignee_id=data.assignee_id))


@bp.route("/v1/ai/settings", methods=["GET"], name="ai_settings_get")
@endpoint(summary="The workspace's AI settings: providers, primary, budget, auto-apply", permission="admin", tag=TAG,
          response=AISettingsRead)
def get_settings() -> Response:
    return json_response(service.get_ai_settings(scope_of(bp.current_request)))


@bp.route("/v1/ai/settings", methods=["PUT"], name="ai_settings_put")
@endpoint(summary="Replace the workspace's AI settings (only configured providers may be enabled)",
          permission="admin", tag=TAG, request=AISettingsUpdate, response=AISettingsRead, errors=(400, 422))
def put_settings() -> Response:
    request = bp.current_request
    return json_response(service.put_ai_settings(scope_of(request), parse_body(request, AISettingsUpdate)))


@bp.route("/v1/ai/usage", methods=["GET"], name="ai_usage_get")
@endpoint(summary="AI cost and tokens of a month, per feature and per person", permission="admin", tag=TAG,
          response=AIUsageRead, errors=(422,), query=(MONTH_PARAM,))
def get_usage() -> Response:
    request = bp.current_request
    return json_response(service.usage(scope_of(request), month=parse_query(request, AIUsageQuery).month))
