"""RFC 9457 problem+json responses, and pydantic errors as lists of fields at fault."""
from __future__ import annotations

import json
from typing import Any

from chalice.app import Response
from pydantic import ValidationError

from shared.errors import AppError, ValidationFailed

PROBLEM_JSON = "application/problem+json"


def problem_body(error: AppError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error.type_uri,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": request_id,
    }
    if error.errors is not None:
        body["errors"] = error.errors
    body.update(error.extra)
    return body


def problem_response(error: AppError, request_id: str) -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": PROBLEM_JSON, **error.headers}
    return Response(body=json.dumps(problem_body(error, request_id)), headers=headers, status_code=error.status)


def field_errors(exc: ValidationError, *, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    errors = []
    for item in exc.errors(include_url=False):
        inside = (item.get("ctx") or {}).get("path")  # where inside the field (StrictModel's text check)
        location = ".".join(str(part) for part in prefix + tuple(item["loc"]) + ((inside,) if inside else ()))
        location = location or "body"
        code = item["type"]
        message = "unknown field" if code == "extra_forbidden" else item["msg"]
        if item.get("input", ...) is None and code != "missing":
            # A null where the type admits none (pydantic says "Input should be a valid list"): say what to do.
            code, message = "null_not_allowed", "may be left out, but not null"
        errors.append({"field": location, "message": message, "code": code})
    return errors


def validation_failed(exc: ValidationError, *, prefix: tuple[str | int, ...] = ()) -> ValidationFailed:
    errors = field_errors(exc, prefix=prefix)
    if len(errors) == 1:  # say what is wrong where a client reads first (a hint like "did you mean" included)
        return ValidationFailed(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    return ValidationFailed(f"{len(errors)} field(s) failed validation", errors=errors)


def at_input(error: dict[str, Any], index: int) -> dict[str, Any]:
    """A field at fault inside batch input `index`, named from the body's root (`inputs.3.email`)."""
    prefix = f"inputs.{index}"
    field = str(error.get("field", ""))
    if field == prefix or field.startswith(prefix + "."):
        return error
    return {**error, "field": f"{prefix}.{field}" if field else prefix}
