"""Custom field definitions: anyone who may read lists them; only admins define, edit, archive, restore."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.fields import service
from functions.fields.schemas import FieldCreate, FieldGetQuery, FieldListQuery, FieldPage, FieldRead, FieldUpdate
from layers.http.endpoint import ARCHIVED_PARAM, CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import if_match, json_response, no_content, parse_body, parse_query, record_response, scope_of

bp = Blueprint(__name__)
TAG = "Custom fields"
OBJECT_PARAM = QueryParam("object", {"type": "string", "enum": ["contacts", "companies", "deals"]},
                          "Only the fields of this object type")


@bp.route("/v1/fields", methods=["GET"], name="fields_list")
@endpoint(summary="List custom field definitions", permission="read", tag=TAG, response=FieldPage, errors=(422,),
          query=(OBJECT_PARAM, ARCHIVED_PARAM, LIMIT_PARAM, CURSOR_PARAM))
def list_fields() -> Response:
    request = bp.current_request
    query = parse_query(request, FieldListQuery)
    return json_response(service.list_fields(scope_of(request), object_type=query.object, limit=query.limit,
                                             include_archived=query.include_archived, cursor=query.cursor))


@bp.route("/v1/fields", methods=["POST"], name="fields_create")
@endpoint(summary="Define a custom field", permission="admin", tag=TAG, request=FieldCreate, response=FieldRead,
          status=201, errors=(400, 409, 422), etag=True)
def create_field() -> Response:
    request = bp.current_request
    view = service.create_field(scope_of(request), parse_body(request, FieldCreate))
    response = record_response(view.body, view.version, 201)
    response.headers["Location"] = f"/v1/fields/{view.id}"
    return response


@bp.route("/v1/fields/{field_id}", methods=["GET"], name="fields_get")
@endpoint(summary="Get a custom field definition", permission="read", tag=TAG, response=FieldRead,
          errors=(404, 422), etag=True, query=(ARCHIVED_PARAM,))
def get_field(field_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, FieldGetQuery)
    view = service.get_field(scope_of(request), field_id, include_archived=query.include_archived)
    return record_response(view.body, view.version)


@bp.route("/v1/fields/{field_id}", methods=["PATCH"], name="fields_update")
@endpoint(summary="Edit a custom field (label, description, required, unique, options)", permission="admin",
          tag=TAG, request=FieldUpdate, response=FieldRead, errors=(400, 404, 409, 412, 422), etag=True)
def update_field(field_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, FieldUpdate)
    view = service.update_field(scope_of(request), field_id, data, expected_version=if_match(request))
    return record_response(view.body, view.version)


@bp.route("/v1/fields/{field_id}", methods=["DELETE"], name="fields_archive")
@endpoint(summary="Archive a custom field (its values stay stored and readable)", permission="admin", tag=TAG,
          status=204, errors=(404, 409, 412))
def archive_field(field_id: str) -> Response:
    request = bp.current_request
    service.archive_field(scope_of(request), field_id, expected_version=if_match(request))
    return no_content()


@bp.route("/v1/fields/{field_id}/restore", methods=["POST"], name="fields_restore")
@endpoint(summary="Restore an archived custom field", permission="admin", tag=TAG, response=FieldRead,
          errors=(404, 409), etag=True)
def restore_field(field_id: str) -> Response:
    view = service.restore_field(scope_of(bp.current_request), field_id)
    return record_response(view.body, view.version)
