"""Deal routes: the standard record routes, the explicit stage move, stage changes, and the board."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response
from pydantic import Field

from functions.deals.schemas import Board, DealPage, DealRead, StageChangePage, StageMove
from functions.deals.service import deals
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import if_match, json_response, parse_body, parse_query, record_response, scope_of
from layers.records.routes import PageQuery, register_record_routes
from shared.schemas import StrictModel

bp = Blueprint(__name__)
TAG = "Deals"
register_record_routes(bp, deals, tag=TAG)
BOARD_LIMIT_PARAM = QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 20},
                               "Deals per stage")


class BoardQuery(StrictModel):
    limit: int = Field(20, ge=1, le=200)


class BoardStageQuery(BoardQuery):
    cursor: str | None = None


@bp.route("/v1/deals/{record_id}/stage", methods=["POST"], name="deals_move_stage")
@endpoint(summary="Move a deal to a stage (a lost stage needs lost_reason)", permission="write", tag=TAG,
          request=StageMove, response=DealRead, errors=(400, 404, 409, 412, 422), etag=True)
def move_stage(record_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, StageMove)
    view = deals.move_stage(scope_of(request), record_id, data, expected_version=if_match(request))
    return record_response(view.body, view.version)


@bp.route("/v1/deals/{record_id}/stage-changes", methods=["GET"], name="deals_stage_changes")
@endpoint(summary="A deal's stage changes, newest first", permission="read", tag=TAG, response=StageChangePage,
          errors=(404, 422), query=(LIMIT_PARAM, CURSOR_PARAM))
def stage_changes(record_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, PageQuery)
    return json_response(deals.stage_changes(scope_of(request), record_id, limit=query.limit, cursor=query.cursor))


@bp.route("/v1/pipelines/{pipeline_id}/board", methods=["GET"], name="deals_board")
@endpoint(summary="The board: each stage's count, amounts per currency and first page of deals", permission="read",
          tag=TAG, response=Board, errors=(404, 422), query=(BOARD_LIMIT_PARAM,))
def board(pipeline_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, BoardQuery)
    return json_response(deals.board(scope_of(request), pipeline_id, limit=query.limit))


@bp.route("/v1/pipelines/{pipeline_id}/board/stages/{stage_id}", methods=["GET"], name="deals_board_stage")
@endpoint(summary="The next page of one board column", permission="read", tag=TAG, response=DealPage,
          errors=(404, 422), query=(BOARD_LIMIT_PARAM, CURSOR_PARAM))
def board_stage(pipeline_id: str, stage_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, BoardStageQuery)
    return json_response(deals.board_stage(scope_of(request), pipeline_id, stage_id, limit=query.limit,
                                           cursor=query.cursor))
