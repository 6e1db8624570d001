"""Route metadata: what a handler needs (permission) and says (schemas, errors) — one source
for the auth middleware, the OpenAPI document and the tests' route inventory."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

Permission = Literal["public", "user", "read", "write", "admin"]
F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__crm_endpoint__"


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    summary: str
    permission: Permission
    tag: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[QueryParam, ...] = ()
    etag: bool = False  # single-record response: ETag header, If-None-Match / If-Match
    body_required: bool = True  # False: the body may be left out (the handler has defaults)
    content_type: str = "application/json"
    extra_responses: dict[int, str] = field(default_factory=dict)
    # Bodies in other media types than JSON, e.g. {"multipart/form-data": ImportUpload}; the route's
    # `content_types` must accept each.
    request_forms: dict[str, type[BaseModel]] = field(default_factory=dict)
    # False only for routes that answer without the database (liveness, metrics, the document): the
    # others may answer 503 while it is unreachable.
    touches_database: bool = True


def endpoint(**spec: Any) -> Callable[[F], F]:
    """Attach an `Endpoint` to a view function (put it under the `@bp.route` decorator)."""
    meta = Endpoint(**spec)

    def attach(view: F) -> F:
        setattr(view, ATTRIBUTE, meta)
        return view

    return attach


def endpoint_of(view: Callable[..., Any]) -> Endpoint | None:
    return getattr(view, ATTRIBUTE, None)


def with_article(noun: str) -> str:
    """`a contact`, `an activity`: for summaries generated from object names (none starts with a silent
    consonant or a vowel letter said as a consonant, so the letter decides)."""
    return f"{'an' if noun[:1].lower() in set('aeiou') else 'a'} {noun}"


LIMIT_PARAM = QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Page size")
CURSOR_PARAM = QueryParam("cursor", {"type": "string"}, "Opaque cursor from the previous page's next_cursor")
ARCHIVED_PARAM = QueryParam("include_archived", {"type": "boolean", "default": False}, "Include archived records")
