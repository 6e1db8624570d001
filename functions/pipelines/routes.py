"""Pipeline routes: pipelines with their ordered stages (list, get, create, patch, archive, restore) and
the stage sub-resource (add, update, reorder, remove). Every write answers the whole pipeline."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response
from pydantic import Field

from functions.pipelines import service
from functions.pipelines.schemas import (
    PipelineCreate,
    PipelinePage,
    PipelineRead,
    PipelineUpdate,
    StageAdd,
    StageReorder,
    StageUpdate,
)
from layers.http.endpoint import ARCHIVED_PARAM, CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import if_match, json_response, no_content, parse_body, parse_query, record_response, scope_of
from layers.records.routes import GetQuery, ListQuery
from shared.schemas import StrictModel

bp = Blueprint(__name__)
TAG = "Pipelines"
BASE = "/v1/pipelines"
MOVE_PARAM = QueryParam("move_deals_to", {"type": "string"},
                        "Another stage of the pipeline; required while the stage still holds deals")


class DeleteStageQuery(StrictModel):
    move_deals_to: str | None = Field(None, min_length=1, max_length=26)


def _answer(read: PipelineRead, version: int, status: int = 200) -> Response:
    return record_response(read.model_dump_json(), version, status)


@bp.route(BASE, methods=["GET"], name="pipelines_list")
@endpoint(summary="List pipelines with their stages", permission="read", tag=TAG, response=PipelinePage,
          errors=(422,), query=(LIMIT_PARAM, CURSOR_PARAM, ARCHIVED_PARAM))
def list_pipelines() -> Response:
    request = bp.current_request
    query = parse_query(request, ListQuery)
    return json_response(service.list_pipelines(scope_of(request), limit=query.limit, cursor=query.cursor,
                                                include_archived=query.include_archived))


@bp.route(BASE, methods=["POST"], name="pipelines_create")
@endpoint(summary="Create a pipeline with its stages", permission="admin", tag=TAG, request=PipelineCreate,
          response=PipelineRead, status=201, errors=(400, 422), etag=True)
def create_pipeline() -> Response:
    request = bp.current_request
    read, version = service.create_pipeline(scope_of(request), parse_body(request, PipelineCreate))
    response = _answer(read, version, 201)
    response.headers["Location"] = f"{BASE}/{read.id}"
    return response


@bp.route(f"{BASE}/{{pipeline_id}}", methods=["GET"], name="pipelines_get")
@endpoint(summary="Get a pipeline with its stages in order", permission="read", tag=TAG, response=PipelineRead,
          errors=(404, 422), etag=True, query=(ARCHIVED_PARAM,))
def get_pipeline(pipeline_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, GetQuery)
    read, version = service.get_pipeline(scope_of(request), pipeline_id, include_archived=query.include_archived)
    return _answer(read, version)


@bp.route(f"{BASE}/{{pipeline_id}}", methods=["PATCH"], name="pipelines_update")
@endpoint(summary="Rename a pipeline, or make it the default", permission="admin", tag=TAG,
          request=PipelineUpdate, response=PipelineRead, errors=(400, 404, 409, 412, 422), etag=True)
def update_pipeline(pipeline_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, PipelineUpdate)
    read, version = service.update_pipeline(scope_of(request), pipeline_id, data, expected_version=if_match(request))
    return _answer(read, version)


@bp.route(f"{BASE}/{{pipeline_id}}", methods=["DELETE"], name="pipelines_archive")
@endpoint(summary="Archive a pipeline (not the default one, nor one holding live deals)", permission="admin",
          tag=TAG, status=204, errors=(404, 409, 412))
def archive_pipeline(pipeline_id: str) -> Response:
    request = bp.current_request
    service.archive_pipeline(scope_of(request), pipeline_id, expected_version=if_match(request))
    return no_content()


@bp.route(f"{BASE}/{{pipeline_id}}/restore", methods=["POST"], name="pipelines_restore")
@endpoint(summary="Restore an archived pipeline", permission="admin", tag=TAG, response=PipelineRead,
          errors=(404, 409), etag=True)
def restore_pipeline(pipeline_id: str) -> Response:
    read, version = service.restore_pipeline(scope_of(bp.current_request), pipeline_id)
    return _answer(read, version)


@bp.route(f"{BASE}/{{pipeline_id}}/stages", methods=["POST"], name="pipelines_stages_add")
@endpoint(summary="Add a stage (at `position`, or last)", permission="admin", tag=TAG, request=StageAdd,
          response=PipelineRead, status=201, errors=(400, 404, 409, 412, 422), etag=True)
def add_stage(pipeline_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, StageAdd)
    read, version = service.add_stage(scope_of(request), pipeline_id, data, expected_version=if_match(request))
    return _answer(read, version, 201)


@bp.route(f"{BASE}/{{pipeline_id}}/stages/reorder", methods=["POST"], name="pipelines_stages_reorder")
@endpoint(summary="Put the stages in a new order", permission="admin", tag=TAG, request=StageReorder,
          response=PipelineRead, errors=(400, 404, 409, 412, 422), etag=True)
def reorder_stages(pipeline_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, StageReorder)
    read, version = service.reorder_stages(scope_of(request), pipeline_id, data.stage_ids,
                                           expected_version=if_match(request))
    return _answer(read, version)


@bp.route(f"{BASE}/{{pipeline_id}}/stages/{{stage_id}}", methods=["PATCH"], name="pipelines_stages_update")
@endpoint(summary="Rename a stage, or change its probability or kind", permission="admin", tag=TAG,
          request=StageUpdate, response=PipelineRead, errors=(400, 404, 409, 412, 422), etag=True)
def update_stage(pipeline_id: str, stage_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, StageUpdate)
    read, version = service.update_stage(scope_of(request), pipeline_id, stage_id, data,
                                         expected_version=if_match(request))
    return _answer(read, version)


@bp.route(f"{BASE}/{{pipeline_id}}/stages/{{stage_id}}", methods=["DELETE"], name="pipelines_stages_delete")
@endpoint(summary="Remove a stage; its deals move to `move_deals_to` (required while it holds any)",
          permission="admin", tag=TAG, response=PipelineRead, errors=(404, 409, 412, 422), etag=True,
          query=(MOVE_PARAM,))
def delete_stage(pipeline_id: str, stage_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, DeleteStageQuery)
    read, version = service.delete_stage(scope_of(request), pipeline_id, stage_id, move_deals_to=query.move_deals_to,
                                         expected_version=if_match(request))
    return _answer(read, version)
