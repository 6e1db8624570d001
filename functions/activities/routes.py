"""Activity routes: the standard record routes, task completion, task lists, and record timelines."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.activities.schemas import OverdueQuery, TasksQuery, TimelinePage, TimelineQuery
from functions.activities.service import TIMELINE_TYPES, activities
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import if_match, json_response, parse_query, record_response, scope_of
from layers.records.routes import page_model_for, register_record_routes

bp = Blueprint(__name__)
TAG = "Activities"
ActivityPage = page_model_for(activities.spec.read_schema)
KINDS_PARAM = QueryParam("kinds", {"type": "string", "example": "note,call,history"},
                         "Comma-separated: note, task, call, meeting, email, history (default: all)")
STATUS_PARAM = QueryParam("status", {"type": "string", "enum": ["open", "completed", "all"], "default": "open"},
                          "Which tasks")
MINE_OWNER_PARAM = QueryParam("owner_id", {"type": "string"},
                              "API keys only (required for them): whose tasks, since tasks are per person")
OVERDUE_OWNER_PARAM = QueryParam("owner_id", {"type": "string"},
                                 "Admins and API keys: only this person's tasks (people see their own)")

SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}


@bp.route("/v1/activities/tasks/mine", methods=["GET"], name="activities_tasks_mine")
@endpoint(summary="My tasks (soonest due first, undated last)", permission="read", tag=TAG, response=ActivityPage,
          errors=(422,), query=(LIMIT_PARAM, CURSOR_PARAM, STATUS_PARAM, MINE_OWNER_PARAM))
def my_tasks() -> Response:
    request = bp.current_request
    query = parse_query(request, TasksQuery)
    return json_response(activities.my_tasks(scope_of(request), status=query.status, owner_id=query.owner_id,
                                             limit=query.limit, cursor=query.cursor))


@bp.route("/v1/activities/tasks/overdue", methods=["GET"], name="activities_tasks_overdue")
@endpoint(summary="Overdue open tasks (oldest due first)", permission="read", tag=TAG, response=ActivityPage,
          errors=(403, 422), query=(LIMIT_PARAM, CURSOR_PARAM, OVERDUE_OWNER_PARAM))
def overdue_tasks() -> Response:
    request = bp.current_request
    query = parse_query(request, OverdueQuery)
    return json_response(activities.overdue_tasks(scope_of(request), owner_id=query.owner_id, limit=query.limit,
                                                  cursor=query.cursor))


register_record_routes(bp, activities, tag=TAG)


@bp.route("/v1/activities/{record_id}/complete", methods=["POST"], name="activities_complete")
@endpoint(summary="Complete a task", permission="write", tag=TAG, response=activities.spec.read_schema,
          errors=(404, 409, 412, 422), etag=True)
def complete_task(record_id: str) -> Response:
    request = bp.current_request
    view = activities.complete(scope_of(request), record_id, expected_version=if_match(request))
    return record_response(view.body, view.version)


@bp.route("/v1/activities/{record_id}/reopen", methods=["POST"], name="activities_reopen")
@endpoint(summary="Reopen a completed task", permission="write", tag=TAG, response=activities.spec.read_schema,
          errors=(404, 409, 412, 422), etag=True)
def reopen_task(record_id: str) -> Response:
    request = bp.current_request
    view = activities.reopen(scope_of(request), record_id, expected_version=if_match(request))
    return record_response(view.body, view.version)


def _register_timeline(object_type: str) -> None:
    @bp.route(f"/v1/{object_type}/{{record_id}}/timeline", methods=["GET"], name=f"activities_timeline_{object_type}")
    @endpoint(summary=f"Timeline of a {SINGULAR[object_type]}: activities and field history, newest first",
              permission="read", tag=TAG, response=TimelinePage, errors=(404, 422),
              query=(LIMIT_PARAM, CURSOR_PARAM, KINDS_PARAM))
    def timeline(record_id: str) -> Response:
        request = bp.current_request
        query = parse_query(request, TimelineQuery)
        return json_response(activities.timeline(scope_of(request), object_type, record_id, limit=query.limit,
                                                 cursor=query.cursor, kinds=query.kinds))


for _object_type in TIMELINE_TYPES:
    _register_timeline(_object_type)
