"""Association routes: a record's links by type, link/unlink one pair, and batches of either.

The per-record routes are declared once per object type (`/v1/contacts/{record_id}/associations/...`)
rather than as `/v1/{object}/...`: our router needs one parameter name per path level, and the record
routes already name that level `{record_id}` under each object.
"""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.associations import service
from functions.associations.schemas import (
    LINKABLE,
    AssociationBatchArchive,
    AssociationBatchCreate,
    AssociationBatchRequest,
    AssociationBatchResponse,
    AssociationCreate,
    AssociationPage,
    AssociationRead,
    LabelQuery,
)
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint, with_article
from layers.http.requests import json_response, no_content, parse_body, parse_query, scope_of
from layers.records.routes import NoQuery, PageQuery

bp = Blueprint(__name__)
TAG = "Associations"
LABEL_PARAM = QueryParam("label", {"type": "string", "maxLength": 64},
                         "Remove only the link with this label (matched ignoring case); default: every label")
BATCH_STATUS = {207: "Some inputs failed; each result says which and why"}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}


def _register(object_type: str) -> None:
    base = f"/v1/{object_type}/{{record_id}}/associations/{{to_object}}"
    one = with_article(SINGULAR[object_type])

    @bp.route(base, methods=["GET"], name=f"associations_list_{object_type}")
    @endpoint(summary=f"The records of one type (contacts, companies or deals) linked to {one}",
              permission="read", tag=TAG, response=AssociationPage, errors=(404, 422),
              query=(LIMIT_PARAM, CURSOR_PARAM))
    def list_associations(record_id: str, to_object: str) -> Response:
        request = bp.current_request
        query = parse_query(request, PageQuery)
        return json_response(service.list_associations(
            scope_of(request), object_type=object_type, record_id=record_id, to_object=to_object,
            limit=query.limit, cursor=query.cursor))

    @bp.route(f"{base}/{{to_id}}", methods=["POST"], name=f"associations_create_{object_type}")
    @endpoint(summary=f"Link {one} to a record (the body is optional; 200 when it was linked already with that "
                      "label)", permission="write", tag=TAG, request=AssociationCreate, body_required=False,
              response=AssociationRead, status=201, errors=(404, 422), extra_responses={200: "Already linked"})
    def create_association(record_id: str, to_object: str, to_id: str) -> Response:
        request = bp.current_request
        parse_query(request, NoQuery)
        data = parse_body(request, AssociationCreate) if request.raw_body else AssociationCreate()
        body, created = service.create_association(
            scope_of(request), object_type=object_type, record_id=record_id, to_object=to_object, to_id=to_id,
            label=data.label, is_primary=data.is_primary)
        return json_response(body, 201 if created else 200)

    @bp.route(f"{base}/{{to_id}}", methods=["DELETE"], name=f"associations_remove_{object_type}")
    @endpoint(summary=f"Unlink {one} from a record (every label, or only ?label=)",
              permission="write", tag=TAG, status=204, errors=(404, 409, 422), query=(LABEL_PARAM,))
    def remove_association(record_id: str, to_object: str, to_id: str) -> Response:
        request = bp.current_request
        query = parse_query(request, LabelQuery)
        service.remove_association(scope_of(request), object_type=object_type, record_id=record_id,
                                   to_object=to_object, to_id=to_id, label=query.label)
        return no_content()


for _object_type in LINKABLE:
    _register(_object_type)


@bp.route("/v1/associations/batch/create", methods=["POST"], name="associations_batch_create")
@endpoint(summary="Link up to 100 pairs of records", permission="write", tag=TAG, request=AssociationBatchCreate,
          response=AssociationBatchResponse, errors=(400, 422), extra_responses=BATCH_STATUS)
def batch_create() -> Response:
    request = bp.current_request
    parse_query(request, NoQuery)
    status, body = service.batch(scope_of(request), "create", parse_body(request, AssociationBatchRequest).inputs)
    return json_response(body, status)


@bp.route("/v1/associations/batch/archive", methods=["POST"], name="associations_batch_archive")
@endpoint(summary="Unlink up to 100 pairs of records", permission="write", tag=TAG,
          request=AssociationBatchArchive, response=AssociationBatchResponse, errors=(400, 422),
          extra_responses=BATCH_STATUS)
def batch_archive() -> Response:
    request = bp.current_request
    parse_query(request, NoQuery)
    status, body = service.batch(scope_of(request), "archive", parse_body(request, AssociationBatchRequest).inputs)
    return json_response(body, status)
