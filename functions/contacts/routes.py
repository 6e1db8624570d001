"""Contact routes: the standard record routes, plus a company's contacts."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.contacts import service
from layers.http.endpoint import ARCHIVED_PARAM, CURSOR_PARAM, LIMIT_PARAM, endpoint
from layers.http.requests import json_response, parse_query, scope_of
from layers.records.routes import ListQuery, page_model_for, register_record_routes

bp = Blueprint(__name__)
register_record_routes(bp, service.contacts, tag="Contacts")


# `{record_id}` because API Gateway (and our router) need one parameter name per path level.
@bp.route("/v1/companies/{record_id}/contacts", methods=["GET"], name="contacts_list_for_company")
@endpoint(summary="Contacts of a company", permission="read", tag="Contacts", errors=(404, 422),
          response=page_model_for(service.contacts.spec.read_schema),
          query=(LIMIT_PARAM, CURSOR_PARAM, ARCHIVED_PARAM))
def list_company_contacts(record_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, ListQuery)
    return json_response(service.list_for_company(
        scope_of(request), record_id, limit=query.limit, cursor=query.cursor, include_archived=query.include_archived))
