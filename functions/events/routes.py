"""Event log routes: the workspace's change events in order, replayable from any cursor."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.events import service
from functions.events.schemas import EventPage, EventRead, EventsQuery
from layers.http.endpoint import QueryParam, endpoint
from layers.http.requests import json_response, parse_query, scope_of

bp = Blueprint(__name__)
TAG = "Events"


@bp.route("/v1/events", methods=["GET"], name="events_list")
@endpoint(summary="Change events in order after a cursor (kept at least 30 days); poll with `next_cursor`",
          permission="read", tag=TAG, response=EventPage, errors=(403, 410, 422), query=(
              QueryParam("after", {"type": "string"}, "Cursor from a previous page's `next_cursor`"),
              QueryParam("types", {"type": "string"}, "Comma-separated event types or patterns: "
                                                       "`contact.created,deal.*`"),
              QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "Page size")))
def list_events() -> Response:
    request = bp.current_request
    body = service.list_events(scope=scope_of(request), query=parse_query(request, EventsQuery))
    return Response(body=body, status_code=200, headers={"Content-Type": "application/json"})


@bp.route("/v1/events/{event_id}", methods=["GET"], name="events_get")
@endpoint(summary="One event of the log", permission="read", tag=TAG, response=EventRead, errors=(403, 404))
def get_event(event_id: str) -> Response:
    return json_response(service.get_event(scope=scope_of(bp.current_request), event_id=event_id))
