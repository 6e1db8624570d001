"""Custom fields: definitions come from the fields capability through a port; values live in each
record's `custom` JSON column, validated on every write path and searchable like built-in properties.

Unique custom fields are enforced by `custom_unique_values` (one row per field and value), so two
concurrent writes of the same value cannot both succeed.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Index, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, TenantMixin
from layers.db.uow import UnitOfWork
from layers.records.properties import ISO_DATETIME_FORMAT, PropertySpec
from shared.clock import as_utc
from shared.errors import UniqueConflict, ValidationFailed
from shared.ids import new_id
from shared.normalize import normalize_email

FieldType = Literal[
    "text", "long_text", "number", "currency", "date", "datetime", "boolean",
    "single_select", "multi_select", "email", "url",
]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MAX_TEXT, _MAX_LONG_TEXT = 1_000, 65_000


@dataclass(frozen=True)
class FieldDef:
    id: str
    key: str
    type: str
    required: bool = False
    unique: bool = False
    options: tuple[str, ...] = ()
    archived: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


DefinitionsProvider = Callable[[UnitOfWork, str], list[FieldDef]]
_provider: DefinitionsProvider = lambda uow, object_type: []  # noqa: E731 - no fields capability: none


def use_definitions_provider(provider: DefinitionsProvider) -> None:
    """Composition root: where definitions come from (the fields capability)."""
    global _provider
    _provider = provider


def definitions(uow: UnitOfWork, object_type: str) -> list[FieldDef]:
    """The definitions, read once per unit of work (a batch of 100 asks once, not 200 times)."""
    memo = uow.session.info.setdefault("custom_field_definitions", {})
    if object_type not in memo:
        memo[object_type] = _provider(uow, object_type)
    return memo[object_type]  # type: ignore[no-any-return]


class CustomUniqueValue(TenantMixin, Base):
    __tablename__ = "custom_unique_values"
    __table_args__ = (
        UniqueConstraint("workspace_id", "field_id", "value"),
        Index("ix_custom_unique_values_record", "workspace_id", "record_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    field_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    record_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)


def _fail(path: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", errors=[{"field": path, "message": message, "code": code}])


def coerce_value(definition: FieldDef, value: Any, path: str) -> Any:
    """One custom value in its stored form; 422 naming `path` when it does not fit the type."""
    kind = definition.type
    if kind in ("text", "long_text"):
        limit = _MAX_TEXT if kind == "text" else _MAX_LONG_TEXT
        if not isinstance(value, str) or len(value) > limit:
            raise _fail(path, f"must be a string of at most {limit} characters")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, "must be a number")
        return value
    if kind == "currency":  # exact: a decimal string, never a float
        try:
            amount = Decimal(str(value)) if not isinstance(value, bool | float) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount.as_tuple().exponent < -4 or abs(amount) >= 10**15:  # type: ignore[operator]
            raise _fail(path, "must be a decimal amount as a string or integer, at most 4 decimal places")
        return str(amount)
    if kind == "date":
        try:
            return date.fromisoformat(value).isoformat() if isinstance(value, str) else _raise()
        except ValueError:
            raise _fail(path, "must be a date YYYY-MM-DD") from None
    if kind == "datetime":
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else _raise()
        except ValueError:
            raise _fail(path, "must be an ISO 8601 datetime with a time zone") from None
        if parsed.tzinfo is None:
            raise _fail(path, "must be an ISO 8601 datetime with a time zone")
        return as_utc(parsed).strftime(ISO_DATETIME_FORMAT)  # fixed width: strings sort in time order
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(path, "must be true or false")
        return value
    if kind == "single_select":
        if value not in definition.options:
            raise _fail(path, f"must be one of: {', '.join(definition.options)}")
        return value
    if kind == "multi_select":
        if not isinstance(value, list) or any(v not in definition.options for v in value):
            raise _fail(path, f"must be a list of: {', '.join(definition.options)}")
        return list(dict.fromkeys(value))
    if kind == "email":
        try:
            return normalize_email(value) if isinstance(value, str) else _raise()
        except ValueError as exc:
            raise _fail(path, f"must be an email address ({exc})") from None
    if kind == "url":
        parts = urlsplit(value) if isinstance(value, str) and len(value) <= 2048 else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise _fail(path, "must be an http(s) URL")
        return value
    raise _fail(path, f"unknown field type {kind}")


def _raise() -> Any:
    raise ValueError


def validate_values(
    uow: UnitOfWork, object_type: str, values: dict[str, Any] | None, *, creating: bool,
    current: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record's `custom` dict after applying `values` (None removes a key); 422 on any misfit."""
    defs = {d.key: d for d in definitions(uow, object_type)}
    result = dict(current or {})
    for key, value in (values or {}).items():
        path = f"custom_fields.{key}"
        definition = defs.get(key)
        if definition is None:
            raise _fail(path, "no such custom field", "unknown_field")
        if definition.archived:
            raise _fail(path, "this custom field is archived", "archived_field")
        if value is None:
            if definition.required:
                raise _fail(path, "is required", "missing")
            result.pop(key, None)
        else:
            result[key] = coerce_value(definition, value, path)
    if creating:
        missing = [d.key for d in defs.values() if d.required and not d.archived and result.get(d.key) is None]
        if missing:
            raise ValidationFailed("required custom fields are missing", errors=[
                {"field": f"custom_fields.{k}", "message": "is required", "code": "missing"} for k in missing])
    return result


def claim_unique_values(uow: UnitOfWork, object_type: str, record_id: str, custom: dict[str, Any]) -> None:
    """Hold each unique field's value for this record; 409 naming the holder when taken."""
    unique = [d for d in definitions(uow, object_type) if d.unique and not d.archived]
    if not unique:
        return
    session = uow.session
    session.execute(delete(CustomUniqueValue).where(CustomUniqueValue.record_id == record_id,
                                                    CustomUniqueValue.field_id.in_([d.id for d in unique])))
    for definition in unique:
        value = custom.get(definition.key)
        if value is None:
            continue
        text = str(value).lower()[:255]
        holder = session.scalar(select(CustomUniqueValue.record_id).where(
            CustomUniqueValue.field_id == definition.id, CustomUniqueValue.value == text))
        if holder is not None:
            raise UniqueConflict(field=f"custom_fields.{definition.key}", value=value, existing_id=holder)
        try:
            with uow.savepoint():
                session.add(CustomUniqueValue(id=new_id(), field_id=definition.id, record_id=record_id, value=text))
        except IntegrityError:
            holder = session.scalar(select(CustomUniqueValue.record_id).where(
                CustomUniqueValue.field_id == definition.id, CustomUniqueValue.value == text))
            raise UniqueConflict(field=f"custom_fields.{definition.key}", value=value,
                                 existing_id=holder or "") from None


def release_unique_values(uow: UnitOfWork, record_id: str) -> None:
    """An archived record gives its unique custom values back."""
    uow.session.execute(delete(CustomUniqueValue).where(CustomUniqueValue.record_id == record_id))


def search_properties(uow: UnitOfWork, object_type: str, model: type) -> list[PropertySpec]:
    """`custom_fields.<key>` properties for filters and sorts, typed from the definitions."""
    specs = []
    for d in definitions(uow, object_type):
        column = model.custom[d.key]  # type: ignore[attr-defined]
        name = f"custom_fields.{d.key}"
        value_of = _value_reader(d.key)
        match d.type:
            case "number":
                specs.append(PropertySpec(name, "number", expression=column.as_float(), value_of=value_of))
            case "currency":
                specs.append(PropertySpec(name, "number", expression=column.as_numeric(19, 4), value_of=value_of))
            case "boolean":
                specs.append(PropertySpec(name, "boolean", expression=column.as_boolean(), value_of=value_of))
            case "single_select":
                specs.append(PropertySpec(name, "enum", choices=d.options, expression=column.as_string(),
                                          value_of=value_of))
            case "multi_select":
                specs.append(PropertySpec(name, "tags", sortable=False, expression=column, value_of=value_of))
            case "date":
                specs.append(PropertySpec(name, "isodate", expression=column.as_string(), value_of=value_of))
            case "datetime":
                specs.append(PropertySpec(name, "isodatetime", expression=column.as_string(), value_of=value_of))
            case _:
                specs.append(PropertySpec(name, "string", expression=column.as_string(), value_of=value_of))
    return specs


def _value_reader(key: str) -> Callable[[Any], Any]:
    return lambda row: (row.custom or {}).get(key)
