"""Custom fields: definitions come from the fields capability through a port; values live in each
record's `custom` JSON column, validated on every write path and searchable like built-in properties.

Unique custom fields are enforced by `custom_unique_values` (one row per field and value, holding a
digest of the value's canonical form), so two concurrent writes of the same value cannot both
succeed, on any database collation and whatever the value's length.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Index,
    Numeric,
    String,
    UniqueConstraint,
    delete,
    insert,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from layers.db.base import Base, IdColumn, TenantMixin
from layers.db.uow import UnitOfWork
from layers.records.properties import PropertySpec, iso_datetime_text, json_array_contains
from shared.clock import as_utc
from shared.errors import UniqueConflict, ValidationFailed
from shared.ids import new_id
from shared.normalize import normalize_email

FieldType = Literal[
    "text", "long_text", "number", "currency", "date", "datetime", "boolean",
    "single_select", "multi_select", "email", "url",
]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]
SELECT_TYPES = frozenset({"single_select", "multi_select"})
UNIQUE_TYPES = frozenset({"text", "email", "url", "number", "single_select"})
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_TEXT, MAX_LONG_TEXT, MAX_URL = 1_000, 65_000, 2_048
MAX_NUMBER = 10**15  # |n| below this: integers stay exact as doubles (2^53 ≈ 9e15)
_CURRENCY = re.compile(r"^-?\d{1,15}(\.\d{1,4})?$")  # fits DECIMAL(19, 4) exactly
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


# ---- which objects take custom fields (registered by RecordService for specs with custom_fields) ----
class _Spec(Protocol):  # the parts of an ObjectSpec read here (service.py imports this module)
    @property
    def object_type(self) -> str: ...
    @property
    def model(self) -> Any: ...
    @property
    def read_schema(self) -> Any: ...
    @property
    def create_schema(self) -> Any: ...
    @property
    def update_schema(self) -> Any: ...
    @property
    def properties(self) -> tuple[PropertySpec, ...]: ...


@dataclass(frozen=True)
class CustomObject:
    object_type: str
    model: Any  # has a `custom` JSON column
    builtin_names: frozenset[str]  # what a custom field key may not be called


_objects: dict[str, CustomObject] = {}


def register_object(spec: _Spec) -> None:
    """An object type whose records carry custom fields (RecordService calls this for its spec)."""
    names = {p.name for p in spec.properties}
    for schema in (spec.read_schema, spec.create_schema, spec.update_schema):
        names |= set(schema.model_fields)
    names |= {column.key for column in spec.model.__table__.columns}
    _objects[spec.object_type] = CustomObject(spec.object_type, spec.model, frozenset(names))


def custom_object(object_type: str) -> CustomObject | None:
    return _objects.get(object_type)


# ---- definitions, through a port ----------------------------------------------------------------------
DefinitionsProvider = Callable[[UnitOfWork, str], list[FieldDef]]
_provider: DefinitionsProvider = lambda uow, object_type: []  # noqa: E731 - no fields capability: none
_MEMO = "custom_field_definitions"


def use_definitions_provider(provider: DefinitionsProvider) -> None:
    """Composition root: where definitions come from (the fields capability)."""
    global _provider
    _provider = provider


def definitions(uow: UnitOfWork, object_type: str) -> list[FieldDef]:
    """The definitions, read once per unit of work (a batch of 100 asks once, not 200 times)."""
    memo = uow.session.info.setdefault(_MEMO, {})
    if object_type not in memo:
        memo[object_type] = _provider(uow, object_type)
    return memo[object_type]  # type: ignore[no-any-return]


def forget_definitions(uow: UnitOfWork) -> None:
    """After a unit of work changed definitions, its later reads must see the change."""
    uow.session.info.pop(_MEMO, None)


# ---- values -----------------------------------------------------------------------------------------
class CustomUniqueValue(TenantMixin, Base):
    __tablename__ = "custom_unique_values"
    __table_args__ = (
        UniqueConstraint("workspace_id", "field_id", "value"),
        Index("ix_custom_unique_values_record", "workspace_id", "record_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    field_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    record_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)  # unique_token() of the value


class _Invalid(ValueError):
    pass


def coerce_value(definition: FieldDef, value: Any, path: str) -> Any:
    """One custom value in its stored form, or None for "no value" (a blank text, an empty multi
    select); 422 naming `path` when it does not fit the type."""
    try:
        return _COERCERS[definition.type](definition, value)
    except KeyError:
        raise _fail(path, f"unknown field type {definition.type}") from None
    except _Invalid as problem:
        raise _fail(path, str(problem)) from None


def _text(limit: int) -> Callable[[FieldDef, Any], Any]:
    def coerce(_: FieldDef, value: Any) -> str | None:
        if not isinstance(value, str):
            raise _Invalid(f"must be a string of at most {limit} characters")
        value = value.strip()
        if len(value) > limit:
            raise _Invalid(f"must be a string of at most {limit} characters")
        return value or None

    return coerce


def _number(_: FieldDef, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) < MAX_NUMBER:
        raise _Invalid(f"must be a finite number between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}")  # NaN fails <
    return value


def _currency(_: FieldDef, value: Any) -> str:
    # Exact: a decimal string or an integer, never a float (0.1 + 0.2 is not an amount).
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _CURRENCY.match(text.strip()):
        raise _Invalid("must be a decimal amount as a string (or an integer): at most 15 digits before the point "
                       "and 4 after, e.g. \"1250.50\"")
    amount = Decimal(text.strip())
    return format(amount if amount else abs(amount), "f")  # "-0.00" → "0.00"


def _date(_: FieldDef, value: Any) -> str:
    try:
        if isinstance(value, str) and _DATE.match(value):
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise _Invalid("must be a date YYYY-MM-DD")


def _datetime(_: FieldDef, value: Any) -> str:
    message = "must be an ISO 8601 datetime with a time zone, e.g. 2026-03-01T09:30:00Z"
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00")) if isinstance(value, str) else None
        if parsed is None or parsed.tzinfo is None:
            raise _Invalid(message)
        return iso_datetime_text(as_utc(parsed))  # fixed width: strings sort in time order
    except (ValueError, OverflowError):
        raise _Invalid(message) from None


def _boolean(_: FieldDef, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false")
    return value


def _option(definition: FieldDef, value: Any) -> str:
    """An option, matched case-insensitively and stored in the definition's spelling."""
    if isinstance(value, str):
        wanted = value.strip().lower()
        for option in definition.options:
            if option.lower() == wanted:
                return option
    raise _Invalid(f"must be one of: {', '.join(definition.options)}")


def _single_select(definition: FieldDef, value: Any) -> str:
    return _option(definition, value)


def _multi_select(definition: FieldDef, value: Any) -> list[str] | None:
    if not isinstance(value, list):
        raise _Invalid(f"must be a list of: {', '.join(definition.options)}")
    chosen = list(dict.fromkeys(_option(definition, v) for v in value))
    return chosen or None


def _email(_: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 320:
        raise _Invalid("must be an email address")
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise _Invalid(f"must be an email address ({exc})") from None


def _url(_: FieldDef, value: Any) -> str:
    message = "must be an http(s) URL with a host, at most 2048 characters"
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise _Invalid(message)
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # e.g. a bracketed host that is not an IPv6 address
        raise _Invalid(message) from None
    if parts.scheme not in ("http", "https") or not host:
        raise _Invalid(message)
    return text


_COERCERS: dict[str, Callable[[FieldDef, Any], Any]] = {
    "text": _text(MAX_TEXT), "long_text": _text(MAX_LONG_TEXT), "number": _number, "currency": _currency,
    "date": _date, "datetime": _datetime, "boolean": _boolean, "single_select": _single_select,
    "multi_select": _multi_select, "email": _email, "url": _url,
}


def _fail(path: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", errors=[{"field": path, "message": message, "code": code}])


def validate_values(
    uow: UnitOfWork, object_type: str, values: dict[str, Any] | None, *, creating: bool,
    current: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record's `custom` dict after applying `values` (None removes a key); one 422 naming every
    misfit. Archived fields are read-only: writing one is refused unless it repeats the stored value
    (so a client may send back what it read)."""
    defs = {d.key: d for d in definitions(uow, object_type)}
    result = dict(current or {})
    errors: list[dict[str, Any]] = []
    for key, value in (values or {}).items():
        path = f"custom_fields.{key}"
        definition = defs.get(key)
        if definition is None:
            errors.append({"field": path, "message": "no such custom field", "code": "unknown_field"})
            continue
        if definition.archived:
            if value != result.get(key):
                errors.append({"field": path, "message": "this custom field is archived", "code": "archived_field"})
            continue
        try:
            coerced = None if value is None else coerce_value(definition, value, path)
        except ValidationFailed as problem:
            errors.extend(problem.errors or [])
            continue
        if coerced is None:
            if definition.required:
                errors.append({"field": path, "message": "is required", "code": "missing"})
            result.pop(key, None)
        else:
            result[key] = coerced
    if creating:
        errors.extend({"field": f"custom_fields.{d.key}", "message": "is required", "code": "missing"}
                      for d in defs.values()
                      if d.required and not d.archived and result.get(d.key) is None and d.key not in (values or {}))
    if errors:
        detail = errors[0]["field"] + ": " + errors[0]["message"] if len(errors) == 1 else \
            f"{len(errors)} custom field values are not valid"
        raise ValidationFailed(detail, errors=errors)
    return result


# ---- unique values ------------------------------------------------------------------------------------
def unique_token(definition: FieldDef, value: Any) -> str:
    """What two equal values share: numbers by amount (1 == 1.0), everything else case-insensitively."""
    if definition.type == "number" and not isinstance(value, bool) and isinstance(value, int | float):
        text = format(Decimal(str(value)).normalize(), "f")
    else:
        text = str(value).strip().lower()
    return hashlib.sha256(f"{definition.type}:{text}".encode()).hexdigest()


def _holder(uow: UnitOfWork, field_id: str, token: str) -> str | None:
    return uow.session.scalar(select(CustomUniqueValue.record_id).where(
        CustomUniqueValue.field_id == field_id, CustomUniqueValue.value == token))


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
        token = unique_token(definition, value)
        path = f"custom_fields.{definition.key}"
        holder = _holder(uow, definition.id, token)
        if holder is not None:
            raise UniqueConflict(field=path, value=value, existing_id=holder)
        try:
            with uow.savepoint():  # a racing writer of the same value fails only this step
                session.add(CustomUniqueValue(id=new_id(), field_id=definition.id, record_id=record_id, value=token))
        except IntegrityError:
            holder = _holder(uow, definition.id, token)  # READ COMMITTED: the racing winner's claim
            raise UniqueConflict(field=path, value=value, existing_id=holder or "") from None


def release_unique_values(uow: UnitOfWork, record_id: str) -> None:
    """An archived record gives its unique custom values back."""
    uow.session.execute(delete(CustomUniqueValue).where(CustomUniqueValue.record_id == record_id))


def release_field_values(uow: UnitOfWork, field_id: str) -> None:
    """A field that stops being unique (or is archived) gives every value back."""
    uow.session.execute(delete(CustomUniqueValue).where(CustomUniqueValue.field_id == field_id))


def claim_field_values(uow: UnitOfWork, object_type: str, definition: FieldDef) -> int:
    """Claim the values of every live record for a field that becomes unique (or is restored).

    Returns how many records share a value with another (and claims nothing then), else 0. This is
    the final word on duplicates: it compares values exactly as `claim_unique_values` will."""
    spec = _objects[object_type]
    model = spec.model
    scope = uow.scope
    assert scope is not None
    release_field_values(uow, definition.id)
    rows = uow.session.execute(
        select(model.id, model.custom)
        .where(model.archived_at.is_(None), json_raw(model.custom, definition.key).is_not(None))
        .execution_options(yield_per=2_000))
    holders: dict[str, list[str]] = {}
    for record_id, custom in rows:
        value = (custom or {}).get(definition.key)
        if value is not None:
            holders.setdefault(unique_token(definition, value), []).append(record_id)
    clashing = sum(len(ids) for ids in holders.values() if len(ids) > 1)
    if clashing:
        return clashing
    claims = [{"id": new_id(), "workspace_id": scope.workspace_id, "field_id": definition.id, "record_id": ids[0],
               "value": token} for token, ids in holders.items()]
    for start in range(0, len(claims), 1_000):
        uow.session.execute(insert(CustomUniqueValue), claims[start:start + 1_000])
    return 0


# ---- values in SQL: JSON paths typed per field type, the same on SQLite and MySQL/MariaDB ------------------
class _JsonPath(FunctionElement[Any]):
    """The value at `$.key` of a record's `custom` column (NULL when absent)."""

    inherit_cache = True

    def __init__(self, column: Any, key: str) -> None:
        if not KEY_PATTERN.match(key):  # the path is inlined (GROUP BY needs equal SQL text)
            raise ValueError(f"not a custom field key: {key!r}")
        super().__init__(column, literal_column(f"'$.{key}'"))


class json_text(_JsonPath):  # noqa: N801 - SQL function naming
    """A string, compared and sorted like built-in string columns (case-insensitively on MySQL)."""

    type = String()
    name = "json_text"
    inherit_cache = True


class json_text_exact(_JsonPath):  # noqa: N801
    """A string, compared exactly (binary on MySQL): dates, grouping for duplicate checks."""

    type = String()
    name = "json_text_exact"
    inherit_cache = True


class json_number(_JsonPath):  # noqa: N801
    type = Float()
    name = "json_number"
    inherit_cache = True


class json_decimal(_JsonPath):  # noqa: N801
    type = Numeric(19, 4)
    name = "json_decimal"
    inherit_cache = True


class json_boolean(_JsonPath):  # noqa: N801
    type = Boolean()
    name = "json_boolean"
    inherit_cache = True


class json_raw(_JsonPath):  # noqa: N801
    """The JSON value itself (multi select arrays; IS NULL when absent)."""

    name = "json_raw"
    inherit_cache = True


def _parts(element: _JsonPath, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    column, path = list(element.clauses)
    return compiler.process(column, **kw), compiler.process(path, **kw)


@compiles(json_text)
@compiles(json_text_exact)
@compiles(json_number)
@compiles(json_boolean)
@compiles(json_raw)
def _extract_sqlite(element: _JsonPath, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's json_extract hands back SQL types: text, integer/real, 1/0, or JSON text for arrays.
    return "json_extract({}, {})".format(*_parts(element, compiler, **kw))


@compiles(json_decimal)
def _decimal_sqlite(element: _JsonPath, compiler: SQLCompiler, **kw: Any) -> str:
    return "CAST(json_extract({}, {}) AS NUMERIC)".format(*_parts(element, compiler, **kw))


_MYSQL = {
    json_text: "JSON_UNQUOTE(JSON_EXTRACT({0}, {1})) COLLATE utf8mb4_unicode_ci",
    json_text_exact: "JSON_UNQUOTE(JSON_EXTRACT({0}, {1}))",
    json_number: "CAST(JSON_EXTRACT({0}, {1}) AS DOUBLE)",
    json_decimal: "CAST(JSON_UNQUOTE(JSON_EXTRACT({0}, {1})) AS DECIMAL(19, 4))",
    json_boolean: "(CASE JSON_UNQUOTE(JSON_EXTRACT({0}, {1})) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)",
    json_raw: "JSON_EXTRACT({0}, {1})",
}


def _compile_mysql(element: _JsonPath, compiler: SQLCompiler, **kw: Any) -> str:
    return _MYSQL[type(element)].format(*_parts(element, compiler, **kw))


for _construct in _MYSQL:
    compiles(_construct, "mysql")(_compile_mysql)
    compiles(_construct, "mariadb")(_compile_mysql)


def value_expression(model: Any, definition: FieldDef, *, exact: bool = False) -> ColumnElement[Any]:
    """SQL for a field's value on `model`'s rows, typed for comparing and sorting."""
    column, key = model.custom, definition.key
    match definition.type:
        case "number":
            return json_number(column, key)  # type: ignore[return-value]
        case "currency":
            return json_decimal(column, key)  # type: ignore[return-value]
        case "boolean":
            return json_boolean(column, key)  # type: ignore[return-value]
        case "multi_select":
            return json_raw(column, key)  # type: ignore[return-value]
        case "date" | "datetime":
            return json_text_exact(column, key)  # type: ignore[return-value]
    return (json_text_exact if exact else json_text)(column, key)  # type: ignore[return-value]


def search_properties(uow: UnitOfWork, object_type: str, model: type) -> list[PropertySpec]:
    """`custom_fields.<key>` properties for filters and sorts, typed from the definitions (archived
    fields included: their values stay stored, so they stay findable)."""
    return [search_property(d, model) for d in definitions(uow, object_type)]


_KINDS: dict[str, Any] = {
    "number": "number", "currency": "decimal", "boolean": "boolean", "single_select": "enum",
    "multi_select": "tags", "date": "isodate", "datetime": "isodatetime",
}


def search_property(definition: FieldDef, model: type) -> PropertySpec:
    kind = _KINDS.get(definition.type, "string")
    # A multi select has no order; a long text would make cursors as long as the text.
    sortable = definition.type not in ("multi_select", "long_text")
    return PropertySpec(f"custom_fields.{definition.key}", kind, sortable=sortable,
                        choices=definition.options if kind == "enum" else (),
                        expression=value_expression(model, definition),
                        value_of=_value_reader(definition.key, as_int=definition.type == "boolean"))


def _value_reader(key: str, *, as_int: bool = False) -> Callable[[Any], Any]:
    """A cursor's value: booleans as 1/0, as SQL sorts them (SQL cannot ask `> true`)."""
    if as_int:
        return lambda row: None if (value := (row.custom or {}).get(key)) is None else int(value)
    return lambda row: (row.custom or {}).get(key)


def options_in_use(model: Any, definition: FieldDef, removed: Iterable[str]) -> ColumnElement[bool]:
    """Rows whose value uses one of the `removed` options."""
    removed = list(removed)
    if definition.type == "multi_select":
        column = json_raw(model.custom, definition.key)
        return or_(*(json_array_contains(column, literal(v)) for v in removed))
    return json_text_exact(model.custom, definition.key).in_(removed)  # type: ignore[no-any-return]
