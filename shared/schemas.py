"""Base pydantic schemas shared by every capability."""
from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, WithJsonSchema, field_validator
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


# C0 control characters but tab, newline and carriage return; and lone surrogates (a JSON "\ud800" parses into
# one; UTF-8, so the database, cannot hold it). No text a person types contains them; NUL truncates text in
# C libraries, terminals and CSV readers downstream.
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class StrictModel(BaseModel):
    """Request bodies and queries: unknown fields are an error, never silently dropped; text is plain text.

    Every field of every input model — nested models, lists and dict keys and values (custom field values)
    included — is checked once here for control characters: a 422 naming the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # Fields holding raw JSON that another model validates later, one part at a time (batch inputs: a bad
    # input fails alone).
    unvalidated_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text_only(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.unvalidated_fields:
            return value
        where = _unwanted_character_at(value, ())
        if where is not None:  # field_errors (layers/http/problems.py) adds `path` to the field's name
            raise PydanticCustomError(
                "control_character",
                "must not contain control characters (but tab, newline and carriage return) or unpaired surrogates",
                {"path": ".".join(map(str, where))})
        return value


def _unwanted_character_at(value: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """Where inside `value` a string holds an unwanted character, or None."""
    if isinstance(value, str):
        return path if _UNWANTED.search(value) else None
    if isinstance(value, StrictModel):
        return None  # checked by its own validator
    if isinstance(value, BaseModel):
        value = value.__dict__
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unwanted_character_at(key, path + (str(key),)) if isinstance(key, str) else None
            found = found or _unwanted_character_at(item, path + (str(key),))
            if found is not None:
                return found
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            found = _unwanted_character_at(item, path + (index,))
            if found is not None:
                return found
    return None


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
