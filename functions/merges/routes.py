"""Duplicates and merges: likely-duplicate pairs, merge two records, list merges, undo one (30 days)."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.merges import service
from functions.merges.schemas import (
    DuplicatePage,
    DuplicatesQuery,
    MergeCreate,
    MergePage,
    MergeRead,
    MergeResult,
    MergesQuery,
)
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import json_response, parse_body, parse_query, scope_of
from layers.records.routes import NoQuery

bp = Blueprint(__name__)
TAG = "Duplicates and merges"
MIN_SCORE_PARAM = QueryParam("min_score", {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
                             "Only pairs at least this likely")
OBJECT_PARAM = QueryParam("object", {"type": "string", "enum": ["contacts", "companies"]}, "Only merges of these")


def _register(object_type: str, singular: str) -> None:
    @bp.route(f"/v1/{object_type}/duplicates", methods=["GET"], name=f"merges_duplicates_{object_type}")
    @endpoint(summary=f"Likely-duplicate {object_type}, surest first, with a score and the reasons",
              permission="read", tag=TAG, response=DuplicatePage, errors=(422,),
              query=(LIMIT_PARAM, CURSOR_PARAM, MIN_SCORE_PARAM))
    def list_duplicates() -> Response:
        request = bp.current_request
        query = parse_query(request, DuplicatesQuery)
        return json_response(service.duplicates(scope_of(request), object_type, limit=query.limit,
                                                cursor=query.cursor, min_score=query.min_score))

    @bp.route(f"/v1/{object_type}/merge", methods=["POST"], name=f"merges_merge_{object_type}")
    @endpoint(summary=f"Merge one {singular} into another (undoable for 30 days)", permission="write", tag=TAG,
              request=MergeCreate, response=MergeResult, status=201, errors=(403, 404, 409, 422))
    def merge_records() -> Response:
        request = bp.current_request
        parse_query(request, NoQuery)
        merge_id, body = service.merge(scope_of(request), object_type, parse_body(request, MergeCreate))
        return json_response(body, 201, {"Location": f"/v1/merges/{merge_id}"})


_register("contacts", "contact")
_register("companies", "company")


@bp.route("/v1/merges", methods=["GET"], name="merges_list")
@endpoint(summary="Merges, newest first", permission="read", tag=TAG, response=MergePage, errors=(422,),
          query=(OBJECT_PARAM, LIMIT_PARAM, CURSOR_PARAM))
def list_merges() -> Response:
    request = bp.current_request
    query = parse_query(request, MergesQuery)
    return json_response(service.list_merges(scope_of(request), object_type=query.object, limit=query.limit,
                                             cursor=query.cursor))


@bp.route("/v1/merges/{merge_id}", methods=["GET"], name="merges_get")
@endpoint(summary="One merge: what it changed and moved, and until when it can be undone", permission="read",
          tag=TAG, response=MergeRead, errors=(404, 422))
def get_merge(merge_id: str) -> Response:
    request = bp.current_request
    parse_query(request, NoQuery)
    return json_response(service.get(scope_of(request), merge_id))


@bp.route("/v1/merges/{merge_id}/undo", methods=["POST"], name="merges_undo")
@endpoint(summary="Undo a merge (within 30 days, unless the records changed since in a way undo would lose)",
          permission="write", tag=TAG, response=MergeRead, errors=(403, 404, 409))
def undo_merge(merge_id: str) -> Response:
    request = bp.current_request
    parse_query(request, NoQuery)
    return json_response(service.undo(scope_of(request), merge_id))
