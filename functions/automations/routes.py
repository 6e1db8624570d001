"""Automation rules and their runs: admins only, reading included. A rule names webhook targets, job
payloads and the conditions a workspace acts on, and a run holds the events it acted on; members and
read-only keys see the records the rules change, not the rules."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.automations import rules, service
from functions.automations.schemas import (
    AutomationCreate,
    AutomationListQuery,
    AutomationPage,
    AutomationRead,
    AutomationUpdate,
    DryRunRequest,
    DryRunResult,
    RunListQuery,
    RunPage,
    RunRead,
)
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import if_match, json_response, no_content, parse_body, parse_query, record_response, scope_of
from layers.runtime.dispatch import handler_kinds

bp = Blueprint(__name__)
TAG = "Automations"
STATUS_PARAM = QueryParam("status", {"type": "string", "enum": ["active", "paused"]},
                          "Only rules in this state (`paused` shows those the engine stopped after failures)")
OBJECT_PARAM = QueryParam("object_type", {"type": "string", "enum": list(rules.OBJECT_TYPES)},
                          "Only rules of this object type")
RUN_STATUS_PARAM = QueryParam("status", {"type": "string", "enum": [
    "succeeded", "failed", "loop_stopped", "skipped", "retrying"]}, "Only runs in this state")


def known_job_handlers() -> frozenset[str]:
    """The job handlers of the app this Blueprint is registered on (enqueue_job actions name one)."""
    return frozenset(name for name, kind in handler_kinds(bp.current_app).items() if kind == "job")


@bp.route("/v1/automations", methods=["POST"], name="automations_create")
@endpoint(summary="Create an automation rule", permission="admin", tag=TAG, request=AutomationCreate,
          response=AutomationRead, status=201, errors=(400, 422), etag=True)
def create_automation() -> Response:
    request = bp.current_request
    view = service.create_rule(scope_of(request), parse_body(request, AutomationCreate),
                               known_jobs=known_job_handlers())
    response = record_response(view.body, view.version, 201)
    response.headers["Location"] = f"/v1/automations/{view.id}"
    return response


@bp.route("/v1/automations", methods=["GET"], name="automations_list")
@endpoint(summary="List automation rules", permission="admin", tag=TAG, response=AutomationPage, errors=(422,),
          query=(STATUS_PARAM, OBJECT_PARAM, LIMIT_PARAM, CURSOR_PARAM))
def list_automations() -> Response:
    request = bp.current_request
    query = parse_query(request, AutomationListQuery)
    return json_response(service.list_rules(scope_of(request), status=query.status, object_type=query.object_type,
                                            limit=query.limit, cursor=query.cursor))


@bp.route("/v1/automations/{automation_id}", methods=["GET"], name="automations_get")
@endpoint(summary="Get an automation rule (its state, failure count and why it is paused)", permission="admin",
          tag=TAG, response=AutomationRead, errors=(404,), etag=True)
def get_automation(automation_id: str) -> Response:
    view = service.get_rule(scope_of(bp.current_request), automation_id)
    return record_response(view.body, view.version)


@bp.route("/v1/automations/{automation_id}", methods=["PATCH"], name="automations_update")
@endpoint(summary="Edit an automation rule", permission="admin", tag=TAG, request=AutomationUpdate,
          response=AutomationRead, errors=(400, 404, 412, 422), etag=True)
def update_automation(automation_id: str) -> Response:
    request = bp.current_request
    view = service.update_rule(scope_of(request), automation_id, parse_body(request, AutomationUpdate),
                               expected_version=if_match(request), known_jobs=known_job_handlers())
    return record_response(view.body, view.version)


@bp.route("/v1/automations/{automation_id}", methods=["DELETE"], name="automations_delete")
@endpoint(summary="Delete an automation rule (it stops at once; its runs stay readable)", permission="admin",
          tag=TAG, status=204, errors=(404, 412))
def delete_automation(automation_id: str) -> Response:
    request = bp.current_request
    service.delete_rule(scope_of(request), automation_id, expected_version=if_match(request))
    return no_content()


@bp.route("/v1/automations/{automation_id}/pause", methods=["POST"], name="automations_pause")
@endpoint(summary="Pause an automation rule", permission="admin", tag=TAG, response=AutomationRead,
          errors=(404,), etag=True)
def pause_automation(automation_id: str) -> Response:
    view = service.pause_rule(scope_of(bp.current_request), automation_id)
    return record_response(view.body, view.version)


@bp.route("/v1/automations/{automation_id}/resume", methods=["POST"], name="automations_resume")
@endpoint(summary="Resume a paused automation rule (its failure count starts again from 0)", permission="admin",
          tag=TAG, response=AutomationRead, errors=(404,), etag=True)
def resume_automation(automation_id: str) -> Response:
    view = service.resume_rule(scope_of(bp.current_request), automation_id)
    return record_response(view.body, view.version)


@bp.route("/v1/automations/{automation_id}/runs", methods=["GET"], name="automations_runs_list")
@endpoint(summary="An automation's runs, newest first", permission="admin", tag=TAG, response=RunPage,
          errors=(404, 422), query=(RUN_STATUS_PARAM, LIMIT_PARAM, CURSOR_PARAM))
def list_runs(automation_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, RunListQuery)
    return json_response(service.list_runs(scope_of(request), automation_id, status=query.status,
                                           limit=query.limit, cursor=query.cursor))


@bp.route("/v1/automations/{automation_id}/runs/{run_id}", methods=["GET"], name="automations_runs_get")
@endpoint(summary="One run: its trigger event and each step's result or error", permission="admin", tag=TAG,
          response=RunRead, errors=(404,))
def get_run(automation_id: str, run_id: str) -> Response:
    return json_response(service.get_run(scope_of(bp.current_request), automation_id, run_id))


@bp.route("/v1/automations/{automation_id}/runs/{run_id}/retry", methods=["POST"], name="automations_runs_retry")
@endpoint(summary="Retry a failed run (the same run, its next attempt, run by a job)", permission="admin", tag=TAG,
          response=RunRead, status=202, errors=(404, 409))
def retry_run(automation_id: str, run_id: str) -> Response:
    return json_response(service.retry_run(scope_of(bp.current_request), automation_id, run_id), 202)


@bp.route("/v1/automations/{automation_id}/test", methods=["POST"], name="automations_test")
@endpoint(summary="Dry-run a rule on a record: do the conditions match, what would each action do (nothing "
                  "is written)", permission="admin", tag=TAG, request=DryRunRequest, response=DryRunResult,
          errors=(400, 404, 422))
def test_automation(automation_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, DryRunRequest)
    return json_response(service.dry_run(scope_of(request), automation_id, data.record_id,
                                         known_jobs=known_job_handlers()))
