"""OpenAPI 3.1 from the route table and the pydantic schemas: every route, schema and error."""
from __future__ import annotations

import re
from typing import Any

from chalice import Chalice
from pydantic import BaseModel

from layers.http.endpoint import Endpoint, endpoint_of
from shared.schemas import Problem

_ERROR_TEXT = {
    400: "Malformed request (e.g. JSON that does not parse)",
    401: "Missing, invalid or expired credentials",
    403: "The credential may not do this",
    404: "No such record in this workspace",
    409: "Conflict: a unique value is taken (names the existing record) or a concurrent change",
    410: "Gone: what the request points at is no longer kept (e.g. events older than the log keeps)",
    412: "If-Match names an older version",
    413: "Body larger than 1 MiB",
    415: "Body is not application/json",
    422: "Validation failed: the fields at fault are listed",
    429: "Rate limit exceeded; see Retry-After",
    500: "Unexpected error (reported; no internals are exposed)",
    503: "The database or Redis cannot serve this right now; retry after Retry-After seconds",
}
_RATE_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed in the window"},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in the window"},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the window resets"},
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        name = model.__name__
        self.components.setdefault(name, schema)
        return {"$ref": f"#/components/schemas/{name}"}


def build_openapi(app: Chalice, *, title: str = "CRM API", version: str = "1.0.0") -> dict[str, Any]:
    schemas = _Schemas()
    problem_ref = schemas.ref(Problem)
    paths: dict[str, Any] = {}
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            spec = endpoint_of(entry.view_function)
            if spec is None:
                raise ValueError(f"{method} {path} has no @endpoint metadata")
            paths.setdefault(path, {})[method.lower()] = _operation(path, method, entry.view_name, spec, schemas,
                                                                   problem_ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Multi-tenant CRM API. Errors are RFC 9457 problem+json."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A workspace API key (crm_...) or a Firebase ID token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "crm_session"},
            },
            "parameters": {
                "WorkspaceId": {"name": "X-Workspace-Id", "in": "header", "schema": {"type": "string"},
                                "description": "Which of your workspaces (people with several)"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _operation(
    path: str, method: str, name: str, spec: Endpoint, schemas: _Schemas, problem_ref: dict[str, Any]
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": name, "summary": spec.summary, "tags": [spec.tag]}
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in re.findall(r"{(\w+)}", path)
    ]
    parameters += [
        {"name": q.name, "in": "query", "required": q.required, "schema": q.schema, "description": q.description}
        for q in spec.query
    ]
    if spec.permission not in ("public", "user"):
        parameters.append({"$ref": "#/components/parameters/WorkspaceId"})
    if method == "POST":
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "Replays the first answer for 24 h when repeated"})
    if spec.etag and method in ("PATCH", "DELETE"):
        parameters.append({"name": "If-Match", "in": "header", "schema": {"type": "string"},
                           "description": "Answer 412 unless the record is still at this ETag"})
    if spec.etag and method == "GET":
        parameters.append({"name": "If-None-Match", "in": "header", "schema": {"type": "string"},
                           "description": "Answer 304 when the record is still at this ETag"})
    if parameters:
        operation["parameters"] = parameters
    if spec.request is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": schemas.ref(spec.request)}}}
    success: dict[str, Any] = {"description": spec.summary}
    headers: dict[str, Any] = {"X-Request-Id": {"schema": {"type": "string"}}}
    if spec.permission != "public":
        headers.update(_RATE_HEADERS)
    if spec.etag:
        headers["ETag"] = {"schema": {"type": "string"}, "description": "The record's version"}
    success["headers"] = headers
    if spec.response is not None and spec.status != 204:
        success["content"] = {spec.content_type: {"schema": schemas.ref(spec.response, "serialization")}}
    elif spec.status != 204:
        success["content"] = {spec.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(spec.status): success}
    for status, text in spec.extra_responses.items():
        responses[str(status)] = {"description": text, "content": success.get("content", {})}
    if spec.etag and method == "GET":
        responses["304"] = {"description": "Not modified"}
    errors = set(spec.errors) | {500}
    if spec.permission != "public":  # authenticating reads the database or Redis: either may be unavailable
        errors |= {401, 403, 429, 503}
    if spec.request is not None:
        errors |= {400, 413, 415, 422}
    if method == "POST":
        errors |= {409}
    for status in sorted(errors):
        responses[str(status)] = {"description": _ERROR_TEXT[status],
                                  "content": {"application/problem+json": {"schema": problem_ref}}}
    operation["responses"] = responses
    if spec.permission == "public":
        operation["security"] = []
    return operation
