"""Export routes: ask for an export of contacts, companies or deals (CSV or JSON Lines), read and list them."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.exports import service
from functions.exports.schemas import ExportCreate, ExportPage, ExportRead, ListQuery
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, endpoint
from layers.http.requests import json_response, parse_body, parse_query, scope_of

bp = Blueprint(__name__)
TAG = "Exports"


@bp.route("/v1/exports", methods=["POST"], name="exports_create")
@endpoint(summary="Export records (filtered like a search) as CSV or JSON Lines; poll the export for its "
                  "download_url", permission="write", tag=TAG, request=ExportCreate, response=ExportRead,
          status=202, errors=(400, 422))
def create_export() -> Response:
    request = bp.current_request
    made = service.create_export(scope_of(request), parse_body(request, ExportCreate))
    return json_response(made, 202, {"Location": f"/v1/exports/{made.id}"})


@bp.route("/v1/exports", methods=["GET"], name="exports_list")
@endpoint(summary="List exports (newest first)", permission="read", tag=TAG, response=ExportPage, errors=(422,),
          query=(LIMIT_PARAM, CURSOR_PARAM))
def list_exports() -> Response:
    request = bp.current_request
    query = parse_query(request, ListQuery)
    return json_response(service.list_exports(scope_of(request), limit=query.limit, cursor=query.cursor))


@bp.route("/v1/exports/{export_id}", methods=["GET"], name="exports_get")
@endpoint(summary="An export: status, row count, and a presigned download_url once completed",
          permission="read", tag=TAG, response=ExportRead, errors=(404,))
def get_export(export_id: str) -> Response:
    return json_response(service.get_export(scope_of(bp.current_request), export_id))
