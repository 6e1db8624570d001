"""OpenAPI 3.1 from the route table and the pydantic schemas: every route, its bodies and every status it answers.

A route's statuses come from two places, joined here once:
1. what its handler can raise, declared on the route (`@endpoint(errors=...)`), and its successes;
2. what the layers in front of every handler add, derived from the route's metadata:
   - every request: 413 (the adapter's body limit), 415 (Chalice checks Content-Type on every route, with or
     without a body), 431 (the adapter's header limit), 500 (the error middleware);
   - every route that touches the database: 503 while it (or Redis, for sessions and idempotency) is unreachable;
   - every authenticated route: 401, 403, 429 (rate limits, and an address's budget of failed authentications);
     a workspace route also 400 (a person in several workspaces must name one); a public write 429 too (the
     per-address limit and failed sign-ins);
   - every authenticated POST: Idempotency-Key's 400 (too long), 409 (first request still running), 422 (reused
     with another request) and 503 (no Redis to keep it);
   - a path parameter: 404 (no such record here, whatever the id looks like); query parameters: 422; a body:
     400 and 422; an ETag on GET: 304; 412 (declared where If-Match is read): the If-Match header.

Who may call each operation is its route's declared permission, the one the auth middleware enforces:
`x-permission` (public|user|read|write|admin) and, in words, the operation's description.

Component names are pydantic's (the class name), and must stay unique: two different types that would
share a name make `build_openapi` raise, so the document never shows one type's schema for another's.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from chalice import Chalice
from chalice.app import RouteEntry
from pydantic import BaseModel
from pydantic.json_schema import CoreModeRef, DefsRef, GenerateJsonSchema, JsonSchemaMode

from layers.http.endpoint import Endpoint, endpoint_of
from shared.schemas import Problem

PROBLEM_JSON = "application/problem+json"
REF_TEMPLATE = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Malformed request (e.g. JSON that does not parse, a missing X-Workspace-Id, a bad Idempotency-Key)",
    401: "Missing, invalid or expired credentials",
    403: "The credential may not do this",
    404: "No such record in this workspace",
    409: "Conflict: a unique value is taken (names the existing record), a concurrent change, or a request "
         "with this Idempotency-Key is still running",
    410: "Gone: what the request points at is no longer kept (e.g. events older than the log keeps)",
    412: "If-Match names an older version",
    413: "Body larger than the limit (1 MiB by default)",
    415: "Content-Type is not one this operation reads",
    422: "Validation failed: the fields at fault are listed",
    429: "Rate limit exceeded, or too many failed authentications from this address; see Retry-After",
    431: "Request headers too large",
    500: "Unexpected error (reported; no internals are exposed)",
    503: "A dependency (the database or Redis) is unavailable; retry after Retry-After",
}
# Who may call an operation, from its route's declared permission (`@endpoint(permission=...)`), the same
# value the auth middleware enforces: published as `x-permission` and in words as the description.
_PERMISSION_TEXT = {
    "public": "Who may call: anyone; no credentials.",
    "user": "Who may call: any signed-in person (Firebase ID token or session cookie); not API keys.",
    "read": "Who may call: every member of the workspace (viewer, member, admin, owner) and any of its API keys.",
    "write": "Who may call: members, admins and owners (not viewers); API keys with the `write` or `admin` scope.",
    "admin": "Who may call: admins and owners; API keys with the `admin` scope. Others get 403.",
}
_EVERY_REQUEST = {413, 415, 431, 500}
_REQUEST_ID = {"X-Request-Id": {"schema": {"type": "string"}, "description": "This request's id (also in logs)"}}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying"}}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    409: _RETRY_AFTER,  # only while an Idempotency-Key's first request is running
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
_RATE_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed in the window"},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in the window"},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the window resets"},
}


class SchemaNameClash(ValueError):
    """Two different types would be published under one component name."""


class _Generator(GenerateJsonSchema):
    """pydantic's generator, noting which types ask for each definition name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types_by_name: dict[str, set[str]] = defaultdict(set)

    def get_defs_ref(self, core_mode_ref: CoreModeRef) -> DefsRef:
        defs_ref = super().get_defs_ref(core_mode_ref)
        # pydantic's first choice is the short name; it falls back to module paths when the name is taken,
        # which would publish e.g. `functions__reports__schemas__X`: we fail instead (pinned pydantic; the
        # unit tests catch a change in this private attribute).
        name = self._prioritized_defsref_choices[defs_ref][0]
        self.types_by_name[name].add(core_mode_ref[0])
        return defs_ref


class _Schemas:
    """Every model the document uses, generated in one pass so shared definitions appear once."""

    def __init__(self, models: list[tuple[type[BaseModel], JsonSchemaMode]]) -> None:
        generator = _Generator(ref_template=REF_TEMPLATE)
        inputs = [((model, mode), mode, model.__pydantic_core_schema__) for model, mode in dict.fromkeys(models)]
        self._refs, definitions = generator.generate_definitions(inputs)
        clashes = {name: types for name, types in generator.types_by_name.items() if len(types) > 1}
        if clashes:
            raise SchemaNameClash("; ".join(
                f"{name} would name {len(types)} different types: "
                + ", ".join(sorted(re.sub(r":\d+", "", t) for t in types))
                for name, types in sorted(clashes.items())))
        self.components = dict(sorted(definitions.items()))

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return self._refs[((model, mode), mode)]


def build_openapi(app: Chalice, *, title: str = "CRM API", version: str = "1.0.0") -> dict[str, Any]:
    routes = list(_routes(app))
    problem: tuple[type[BaseModel], JsonSchemaMode] = (Problem, "serialization")
    schemas = _Schemas([problem] + [m for _, _, _, spec in routes for m in _models(spec)])
    problem_ref = schemas.ref(Problem, "serialization")
    paths: dict[str, Any] = {}
    for path, method, entry, spec in routes:
        paths.setdefault(path, {})[method.lower()] = _operation(path, method, entry, spec, schemas, problem_ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Multi-tenant CRM API. Errors are RFC 9457 problem+json."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A workspace API key (crm_...) or a Firebase ID token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "crm_session",
                            "description": "From POST /v1/sessions; writes also need the X-Requested-With header"},
            },
            "parameters": {
                "WorkspaceId": {"name": "X-Workspace-Id", "in": "header", "schema": {"type": "string"},
                                "description": "Which of your workspaces (people with several)"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _routes(app: Chalice) -> Iterator[tuple[str, str, RouteEntry, Endpoint]]:
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            spec = endpoint_of(entry.view_function)
            if spec is None:
                raise ValueError(f"{method} {path} has no @endpoint metadata")
            yield path, method, entry, spec


def _models(spec: Endpoint) -> Iterator[tuple[type[BaseModel], JsonSchemaMode]]:
    if spec.request is not None:
        yield spec.request, "validation"
    for form in spec.request_forms.values():
        yield form, "validation"
    if spec.response is not None:
        yield spec.response, "serialization"


def _operation(
    path: str, method: str, entry: RouteEntry, spec: Endpoint, schemas: _Schemas, problem_ref: dict[str, Any]
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": entry.view_name, "summary": spec.summary, "tags": [spec.tag],
                                 "description": _PERMISSION_TEXT[spec.permission], "x-permission": spec.permission}
    path_names = re.findall(r"{(\w+)}", path)
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path_names
    ]
    parameters += [
        {"name": q.name, "in": "query", "required": q.required, "schema": q.schema, "description": q.description}
        for q in spec.query
    ]
    authenticated = spec.permission != "public"
    in_workspace = spec.permission not in ("public", "user")
    idempotent = authenticated and method == "POST"
    if in_workspace:
        parameters.append({"$ref": "#/components/parameters/WorkspaceId"})
    if idempotent:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "maxLength": 255},
                           "description": "Replays the first answer for 24 h when repeated"})
    if 412 in spec.errors:
        parameters.append({"name": "If-Match", "in": "header", "schema": {"type": "string"},
                           "description": "Answer 412 unless the record is still at this ETag"})
    if spec.etag and method == "GET":
        parameters.append({"name": "If-None-Match", "in": "header", "schema": {"type": "string"},
                           "description": "Answer 304 when the record is still at this ETag"})
    if parameters:
        operation["parameters"] = parameters
    has_body = spec.request is not None or bool(spec.request_forms)
    if has_body:
        operation["requestBody"] = {"required": spec.body_required,
                                    "content": _request_content(f"{method} {path}", entry, spec, schemas)}

    success: dict[str, Any] = {"description": spec.summary}
    headers: dict[str, Any] = dict(_REQUEST_ID)
    if authenticated:
        headers.update(_RATE_HEADERS)
    if spec.etag:
        headers["ETag"] = {"schema": {"type": "string"}, "description": "The record's version"}
    success["headers"] = headers
    if spec.status != 204:
        schema = schemas.ref(spec.response, "serialization") if spec.response is not None else {"type": "string"}
        success["content"] = {spec.content_type: {"schema": schema}}
    responses: dict[str, Any] = {str(spec.status): success}
    for status, text in spec.extra_responses.items():
        responses[str(status)] = {"description": text, "headers": headers, "content": success.get("content", {})}
    if spec.etag and method == "GET":
        responses["304"] = {"description": "Not modified", "headers": {"ETag": headers["ETag"]}}

    errors = set(spec.errors) | _EVERY_REQUEST
    if spec.touches_database:
        errors.add(503)
    if authenticated:
        errors |= {401, 403, 429}
    if in_workspace:
        errors.add(400)
    if not authenticated and method != "GET":
        errors.add(429)
    if idempotent:
        errors |= {400, 409, 422, 503}
    if path_names:
        errors.add(404)
    if spec.query:
        errors.add(422)
    if has_body:
        errors |= {400, 422}
    for status in sorted(errors):
        responses[str(status)] = {"description": _ERROR_TEXT[status],
                                  "headers": {**_REQUEST_ID, **_ERROR_HEADERS.get(status, {})},
                                  "content": {PROBLEM_JSON: {"schema": problem_ref}}}
    operation["responses"] = dict(sorted(responses.items()))
    if not authenticated:
        operation["security"] = []
    return operation


def _request_content(name: str, entry: RouteEntry, spec: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    forms: dict[str, type[BaseModel]] = dict(spec.request_forms)
    if spec.request is not None:
        forms = {"application/json": spec.request, **forms}
    accepted = set(entry.content_types)
    if set(forms) != accepted:
        raise ValueError(f"{name}: the route accepts {sorted(accepted)} but its endpoint "
                         f"documents {sorted(forms)}")
    return {media_type: {"schema": schemas.ref(model, "validation")} for media_type, model in forms.items()}
