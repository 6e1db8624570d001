"""Presence over REST: who has a contact, company or deal open right now (the real-time tier records it)."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.realtime import service
from functions.realtime.schemas import ViewerPage
from layers.http.endpoint import endpoint
from layers.http.requests import json_response, scope_of
from layers.realtime.presence import PRESENCE_OBJECTS

bp = Blueprint(__name__)
TAG = "Real-time"


def _viewers_route(object_type: str) -> None:
    one = object_type[:-3] + "y" if object_type.endswith("ies") else object_type[:-1]

    @bp.route(f"/v1/{object_type}/{{record_id}}/viewers", methods=["GET"], name=f"{object_type}_viewers")
    @endpoint(summary=f"People who have this {one} open now (from the real-time tier; entries expire with "
                      "their socket)", permission="read", tag=TAG, response=ViewerPage, errors=(403, 404))
    def viewers(record_id: str) -> Response:
        request = bp.current_request
        return json_response(service.list_viewers(scope_of(request), object_type=object_type, record_id=record_id))


for _object_type in PRESENCE_OBJECTS:
    _viewers_route(_object_type)
