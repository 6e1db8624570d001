"""Base pydantic schemas shared by every capability."""
from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from shared.ids import ID_PATTERN, is_valid_id

T = TypeVar("T")

READ_ONLY_FIELDS = frozenset({"id", "workspace_id", "created_at", "updated_at", "archived_at", "version"})


def _our_id(value: str) -> str:
    if not is_valid_id(value):
        raise PydanticCustomError("invalid_id", "must be an id of this API (26 characters of Crockford base32)")
    return value


# An id inside a request body (a reference, a batch input's target, a list of contacts): one that cannot be
# ours is the client's mistake, a 422 naming the field — never a lookup (the database would match nothing).
RecordId = Annotated[
    str,
    AfterValidator(_our_id),
    WithJsonSchema({"type": "string", "pattern": ID_PATTERN, "minLength": 26, "maxLength": 26,
                    "examples": ["01J9Z8Q4V6W2X3Y5Z7A9B1C3D5"]}),
]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def Omittable(**kwargs: Any) -> Any:  # noqa: N802 - reads like Field at the call site
    """A PATCH field that may be left out but not sent as null: its type admits no null, so the OpenAPI
    document shows none and a null is a 422 "may be left out, but not null" (layers/http/problems.py).
    Left out, it stays unset, so `model_dump(exclude_unset=True)` leaves it out; a list is cleared with [].
    Use it where null has no meaning of its own; a field whose null clears a value stays `T | None`."""
    return Field(None, json_schema_extra=_without_default, **kwargs)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page")


class Actor(BaseModel):
    """Who made a change: a person, an API key or the system."""

    type: str
    id: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the extension members some problems carry."""

    type: str
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request id")
    errors: list[dict[str, Any]] | None = Field(None, description="Fields at fault (validation errors)")
    existing_id: str | None = Field(None, description="The clashing record (unique conflicts)")
    field: str | None = Field(None, description="The property whose value clashes (unique conflicts)")
    count: int | None = Field(None, description="How many records stand in the way of the change (custom fields)")
    object_type: str | None = Field(None, description="Which kind of records `count` counts")
    deal_count: int | None = Field(None, description="Deals still in the pipeline or stage")
    checks: dict[str, bool] | None = Field(None, description="Which dependencies answer (GET /ready)")
