"""Import routes: create (multipart upload, presigned PUT, or an object in the workspace's prefix), preview,
commit, cancel, read and list."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Request, Response

from functions.imports import service
from functions.imports.schemas import (
    ImportCommit,
    ImportCreate,
    ImportPage,
    ImportPreview,
    ImportRead,
    ImportUpload,
    ListQuery,
    PreviewQuery,
    PreviewRequest,
)
from functions.imports.uploads import multipart_form
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import json_response, parse_body, parse_query, scope_of

bp = Blueprint(__name__)
TAG = "Imports"
MULTIPART = "multipart/form-data"
MAPPING_PARAM = QueryParam("mapping", {"type": "string", "example": '{"E-mail": "email", "Notes": null}'},
                           "The mapping as JSON (default: the suggested mapping)")


def _created(request: Request) -> ImportRead:
    if request.headers.get("content-type", "").lower().startswith(MULTIPART):
        data, upload = multipart_form(request)
        return service.create_import(scope_of(request), data, upload=upload)
    return service.create_import(scope_of(request), parse_body(request, ImportCreate))


@bp.route("/v1/imports", methods=["POST"], name="imports_create", content_types=["application/json", MULTIPART])
@endpoint(summary="Start a CSV import: upload the file (multipart `file`), name an object in your prefix, or get a "
                  "presigned upload_url", permission="write", tag=TAG, request=ImportCreate,
          request_forms={MULTIPART: ImportUpload}, response=ImportRead, status=201, errors=(400, 413, 415, 422))
def create_import() -> Response:
    made = _created(bp.current_request)
    return json_response(made, 201, {"Location": f"/v1/imports/{made.id}"})


@bp.route("/v1/imports", methods=["GET"], name="imports_list")
@endpoint(summary="List imports (newest first)", permission="read", tag=TAG, response=ImportPage, errors=(422,),
          query=(LIMIT_PARAM, CURSOR_PARAM))
def list_imports() -> Response:
    request = bp.current_request
    query = parse_query(request, ListQuery)
    return json_response(service.list_imports(scope_of(request), limit=query.limit, cursor=query.cursor))


@bp.route("/v1/imports/{import_id}", methods=["GET"], name="imports_get")
@endpoint(summary="An import: status, counts, progress, and the rejected rows' rejects_url once finished",
          permission="read", tag=TAG, response=ImportRead, errors=(404,))
def get_import(import_id: str) -> Response:
    return json_response(service.get_import(scope_of(bp.current_request), import_id))


@bp.route("/v1/imports/{import_id}/preview", methods=["GET"], name="imports_preview")
@endpoint(summary="Preview an import: header, suggested mapping, the first rows with their errors",
          permission="write", tag=TAG, response=ImportPreview, errors=(404, 409, 422), query=(MAPPING_PARAM,))
def preview_import(import_id: str) -> Response:
    request = bp.current_request
    mapping = service.parse_mapping(parse_query(request, PreviewQuery).mapping)
    return json_response(service.preview(scope_of(request), import_id, mapping).model_dump_json(by_alias=True))


@bp.route("/v1/imports/{import_id}/preview", methods=["POST"], name="imports_preview_mapping")
@endpoint(summary="Preview an import with a mapping", permission="write", tag=TAG, request=PreviewRequest,
          response=ImportPreview, errors=(404, 409, 422))
def preview_import_mapping(import_id: str) -> Response:
    request = bp.current_request
    mapping = parse_body(request, PreviewRequest).mapping
    return json_response(service.preview(scope_of(request), import_id, mapping).model_dump_json(by_alias=True))


@bp.route("/v1/imports/{import_id}/commit", methods=["POST"], name="imports_commit")
@endpoint(summary="Run the import with a mapping (queued; poll the import for progress)", permission="write",
          tag=TAG, request=ImportCommit, response=ImportRead, status=202, errors=(404, 409, 422))
def commit_import(import_id: str) -> Response:
    request = bp.current_request
    return json_response(service.commit(scope_of(request), import_id, parse_body(request, ImportCommit)), 202)


@bp.route("/v1/imports/{import_id}/cancel", methods=["POST"], name="imports_cancel")
@endpoint(summary="Cancel an import (rows already imported stay)", permission="write", tag=TAG,
          response=ImportRead, errors=(404, 409))
def cancel_import(import_id: str) -> Response:
    return json_response(service.cancel(scope_of(bp.current_request), import_id))
