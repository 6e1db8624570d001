"""The standard routes of a CRM object, declared once for every capability that has records.

`register_record_routes(bp, service)` adds list, create, search, batch create/update/upsert/archive,
get, update, archive, restore and history under `/v1/{object}`, each with its `@endpoint` metadata
so auth, OpenAPI and the route inventory see them like any hand-written route.
"""
from __future__ import annotations

from functools import cache
from typing import Any, ClassVar

from chalice import Blueprint
from chalice.app import Response
from pydantic import BaseModel, Field, create_model

from layers.http.endpoint import ARCHIVED_PARAM, CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint, with_article
from layers.http.requests import (
    if_match,
    json_response,
    no_content,
    parse_body,
    parse_query,
    record_response,
    scope_of,
)
from layers.records.owners import OwnedBy
from layers.records.search import SearchRequest
from layers.records.service import MAX_BATCH, ObjectSpec, RecordService
from shared.schemas import Actor, Page, StrictModel


class ListQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    include_archived: bool = False


class RecordListQuery(ListQuery):
    """The standard list route's parameters (other lists reuse ListQuery, without the owner filter)."""

    owned_by: OwnedBy | None = None


class CreateQuery(StrictModel):
    allow_duplicate: bool = False


class GetQuery(StrictModel):
    include_archived: bool = False


class PageQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class NoQuery(StrictModel):
    pass


OWNED_BY_PARAM = QueryParam("owned_by", {"type": "string", "enum": ["me", "my_team"]},
                            "Only records you own (`me`) or you or a teammate own (`my_team`); people only")
DUPLICATE_PARAM = QueryParam("allow_duplicate", {"type": "boolean", "default": False},
                             "Create even when the email/domain is already used (a deliberate duplicate)")


class BatchRequest(StrictModel):
    # Any JSON value per input: a non-object input fails on its own, like any other bad input.
    inputs: list[Any] = Field(min_length=1, max_length=MAX_BATCH)
    unvalidated_fields: ClassVar[frozenset[str]] = frozenset({"inputs"})  # each input by the object's schema


class HistoryEntry(BaseModel):
    id: str
    record_id: str
    action: str
    field: str
    old_value: Any = None
    new_value: Any = None
    actor: Actor
    source: str
    request_id: str
    changed_at: str


class BatchResult(BaseModel):
    index: int
    status: int
    outcome: str = Field(description="created | updated | archived | error")
    record: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None


class BatchResponse(BaseModel):
    results: list[BatchResult]


class HistoryPage(Page[HistoryEntry]):
    pass


@cache
def page_model_for(read: type[BaseModel]) -> type[BaseModel]:
    """`ContactRead` → `ContactPage` (one class per object, so OpenAPI names it once)."""
    return create_model(f"{read.__name__.removesuffix('Read')}Page", __base__=Page[read])  # type: ignore[valid-type]


def register_record_routes(bp: Blueprint, service: RecordService, *, tag: str) -> None:
    spec = service.spec
    name, base = spec.object_type, f"/v1/{spec.object_type}"
    read = spec.read_schema
    page_model = page_model_for(read)
    one = with_article(spec.event_name)
    batch_docs = _batch_documents(spec)

    @bp.route(base, methods=["GET"], name=f"{name}_list")
    @endpoint(summary=f"List {name}", permission="read", tag=tag, response=page_model, errors=(422,),
              query=(LIMIT_PARAM, CURSOR_PARAM, ARCHIVED_PARAM, OWNED_BY_PARAM))
    def list_records() -> Response:
        query = parse_query(bp.current_request, RecordListQuery)
        return json_response(service.list(scope_of(bp.current_request), limit=query.limit, cursor=query.cursor,
                                          include_archived=query.include_archived, owned_by=query.owned_by))

    @bp.route(base, methods=["POST"], name=f"{name}_create")
    @endpoint(summary=f"Create {one}", permission="write", tag=tag, request=spec.create_schema,
              response=read, status=201, errors=(400, 409, 422), etag=True, query=(DUPLICATE_PARAM,))
    def create_record() -> Response:
        request = bp.current_request
        query = parse_query(request, CreateQuery)
        view = service.create(scope_of(request), parse_body(request, spec.create_schema),
                              allow_duplicate=query.allow_duplicate)
        response = record_response(view.body, view.version, 201)
        response.headers["Location"] = f"{base}/{view.id}"
        return response

    @bp.route(f"{base}/search", methods=["POST"], name=f"{name}_search")
    @endpoint(summary=f"Search {name}", permission="read", tag=tag, request=SearchRequest, response=page_model,
              errors=(400, 422))
    def search_records() -> Response:
        request = bp.current_request
        return json_response(service.search(scope_of(request), parse_body(request, SearchRequest)))

    for operation, doc in batch_docs.items():
        _register_batch(bp, service, operation, tag, doc)

    @bp.route(f"{base}/{{record_id}}", methods=["GET"], name=f"{name}_get")
    @endpoint(summary=f"Get {one}", permission="read", tag=tag, response=read, errors=(404, 422),
              etag=True, query=(ARCHIVED_PARAM,))
    def get_record(record_id: str) -> Response:
        request = bp.current_request
        query = parse_query(request, GetQuery)
        view = service.get(scope_of(request), record_id, include_archived=query.include_archived)
        return record_response(view.body, view.version)

    @bp.route(f"{base}/{{record_id}}", methods=["PATCH"], name=f"{name}_update")
    @endpoint(summary=f"Update {one}", permission="write", tag=tag, request=spec.update_schema,
              response=read, errors=(400, 404, 409, 412, 422), etag=True)
    def update_record(record_id: str) -> Response:
        request = bp.current_request
        data = parse_body(request, spec.update_schema)
        view = service.update(scope_of(request), record_id, data, expected_version=if_match(request))
        return record_response(view.body, view.version)

    @bp.route(f"{base}/{{record_id}}", methods=["DELETE"], name=f"{name}_archive")
    @endpoint(summary=f"Archive {one}", permission="write", tag=tag, status=204,
              errors=(404, 409, 412))
    def archive_record(record_id: str) -> Response:
        request = bp.current_request
        service.archive(scope_of(request), record_id, expected_version=if_match(request))
        return no_content()

    @bp.route(f"{base}/{{record_id}}/restore", methods=["POST"], name=f"{name}_restore")
    @endpoint(summary=f"Restore an archived {spec.event_name}", permission="write", tag=tag, response=read,
              errors=(404, 409), etag=True)
    def restore_record(record_id: str) -> Response:
        view = service.restore(scope_of(bp.current_request), record_id)
        return record_response(view.body, view.version)

    @bp.route(f"{base}/{{record_id}}/history", methods=["GET"], name=f"{name}_history")
    @endpoint(summary=f"Field history of {one}", permission="read", tag=tag, response=HistoryPage,
              errors=(404, 422), query=(LIMIT_PARAM, CURSOR_PARAM))
    def record_history(record_id: str) -> Response:
        request = bp.current_request
        query = parse_query(request, PageQuery)
        return json_response(service.history(scope_of(request), record_id, limit=query.limit, cursor=query.cursor))


def _batch_documents(spec: ObjectSpec) -> dict[str, type[BaseModel]]:
    """The request body of each batch route as the service reads it (it validates input by input, so one bad
    input fails alone): update inputs are the update schema plus the record's `id`, archive inputs only the
    `id`; upsert inputs are matched on the unique property (an object without one refuses upserts)."""
    prefix = spec.read_schema.__name__.removesuffix("Read")
    record_id = (str, Field(description="The record's id"))
    inputs: dict[str, tuple[type[BaseModel], str]] = {
        "create": (spec.create_schema, "The records to create"),
        "update": (create_model(f"{prefix}BatchUpdateInput", __base__=spec.update_schema, id=record_id),
                   "Each record's id and the fields to change"),
        "archive": (create_model(f"{prefix}BatchArchiveInput", __base__=StrictModel, id=record_id),
                    "The records to archive"),
        "upsert": (spec.create_schema,
                   f"Each is matched on `{spec.unique_field}` (required here): the record with that value is "
                   "updated, or a new one created" if spec.unique_field else
                   f"{spec.object_type.capitalize()} have no unique property: upserts are refused (use batch/create "
                   "or batch/update)"),
    }
    return {
        operation: create_model(
            f"{prefix}Batch{operation.capitalize()}", __base__=StrictModel,
            inputs=(list[schema], Field(min_length=1, max_length=MAX_BATCH, description=text)),  # type: ignore[valid-type]
        )
        for operation, (schema, text) in inputs.items()
    }


def _register_batch(bp: Blueprint, service: RecordService, operation: str, tag: str, doc: type[BaseModel]) -> None:
    spec = service.spec

    @bp.route(f"/v1/{spec.object_type}/batch/{operation}", methods=["POST"],
              name=f"{spec.object_type}_batch_{operation}")
    @endpoint(summary=f"Batch {operation} {spec.object_type} (at most {MAX_BATCH})", permission="write", tag=tag,
              request=doc, response=BatchResponse, errors=(400, 422),
              query=(DUPLICATE_PARAM,) if operation == "create" else (),
              extra_responses={207: "Some inputs failed; each result says which and why"})
    def batch() -> Response:
        request = bp.current_request
        query = parse_query(request, CreateQuery if operation == "create" else NoQuery)
        body = parse_body(request, BatchRequest)
        outcome = service.batch(scope_of(request), operation, body.inputs,  # type: ignore[arg-type]
                                allow_duplicate=getattr(query, "allow_duplicate", False))
        return json_response(outcome.body, outcome.status)
