"""Helpers a route uses to read its request and shape its response — no handler parses by hand."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from layers.http.problems import validation_failed
from shared.context import Scope
from shared.errors import JsonTooDeep, MalformedJson, PreconditionFailed, Unauthorized, ValidationFailed
from shared.jsondepth import MAX_JSON_DEPTH, nests_deeper_than
from shared.schemas import READ_ONLY_FIELDS

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"
SCOPE_ATTRIBUTE = "crm_scope"
USER_ATTRIBUTE = "crm_user"


def json_body(request: Request) -> Any:
    """The one place a request's JSON body is parsed: too deep a text is a 400 before json.loads recurses."""
    raw = request.raw_body
    if not raw:
        raise MalformedJson("a JSON body is required")
    if nests_deeper_than(raw):
        raise JsonTooDeep(f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson(f"the body is not valid JSON: {exc.__class__.__name__}") from None
    except RecursionError:  # cannot happen below MAX_JSON_DEPTH; a 400 all the same if it ever does
        raise JsonTooDeep("the body nests too deep") from None


def validate(model: type[M], data: Any, *, prefix: tuple[str | int, ...] = ()) -> M:
    """Validate one JSON value into `model`; read-only and unknown fields are 422s, never dropped."""
    if not isinstance(data, dict):
        raise ValidationFailed(
            "expected a JSON object",
            errors=[{"field": ".".join(map(str, prefix)) or "body", "message": "must be an object", "code": "type"}],
        )
    read_only = sorted(k for k in data if k in READ_ONLY_FIELDS and k not in model.model_fields)
    if read_only:
        raise ValidationFailed(
            "read-only fields cannot be written",
            errors=[
                {"field": ".".join(map(str, prefix + (name,))), "message": "read-only field", "code": "read_only"}
                for name in read_only
            ],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc, prefix=prefix) from None


def parse_body(request: Request, model: type[M]) -> M:
    return validate(model, json_body(request))


def _query(request: Request) -> dict[str, str]:
    return {k: request.query_params[k] for k in request.query_params} if request.query_params else {}


def parse_query(request: Request, model: type[M]) -> M:
    """Query parameters through a pydantic model (unknown parameters are refused too)."""
    try:
        return model.model_validate(_query(request))
    except ValidationError as exc:
        raise validation_failed(exc, prefix=("query",)) from None


def scope_of(request: Request) -> Scope:
    scope = getattr(request, SCOPE_ATTRIBUTE, None)
    if scope is None:  # the auth middleware sets it for every workspace route
        raise Unauthorized()
    return scope  # type: ignore[no-any-return]


def user_of(request: Request) -> Any:
    user = getattr(request, USER_ATTRIBUTE, None)
    if user is None:
        raise Unauthorized()
    return user


def etag(version: int) -> str:
    return f'"v{version}"'


def if_match(request: Request) -> int | None:
    """The version the client last saw, from If-Match; None when the header is absent or `*`."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.startswith("v") or not value[1:].isdigit():
        raise PreconditionFailed("If-Match does not name a version this API issued")
    return int(value[1:])


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        text = body.model_dump_json()
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, separators=(",", ":"), default=str)
    return Response(body=text, status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def page_json(bodies: Iterable[str], next_cursor: str | None) -> str:
    """`{"data": [...], "next_cursor": ...}` from record bodies that are already JSON."""
    return '{"data":[' + ",".join(bodies) + '],"next_cursor":' + json.dumps(next_cursor) + "}"


def record_response(body: str, version: int, status: int = 200) -> Response:
    return json_response(body, status, {"ETag": etag(version)})


def no_content() -> Response:
    return Response(body="", status_code=204, headers={})
