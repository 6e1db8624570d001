"""Searchable properties of an object, and how each search operator becomes SQL."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import Boolean, ColumnElement, and_, false, func, literal, not_, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from shared.clock import as_utc
from shared.errors import ValidationFailed

Kind = Literal["string", "enum", "number", "decimal", "datetime", "id", "tags", "boolean", "isodate",
               "isodatetime"]
Operator = Literal[
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
    "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN",
]
_ORDERED = {"LT", "LTE", "GT", "GTE", "BETWEEN"}
_ALLOWED: dict[str, set[str]] = {
    "string": {"EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN"} | _ORDERED,
    "enum": {"EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"},
    "number": {"EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"} | _ORDERED,
    "decimal": {"EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"} | _ORDERED,  # exact amounts
    "datetime": {"EQ", "NEQ", "HAS_PROPERTY", "NOT_HAS_PROPERTY"} | _ORDERED,
    "id": {"EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"},
    "tags": {"EQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN"},
    "boolean": {"EQ", "NEQ", "HAS_PROPERTY", "NOT_HAS_PROPERTY"},
    # Custom dates and datetimes are stored as fixed-width ISO strings, so strings compare in time order.
    "isodate": {"EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"} | _ORDERED,
    "isodatetime": {"EQ", "NEQ", "HAS_PROPERTY", "NOT_HAS_PROPERTY"} | _ORDERED,
}
ISO_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso_datetime_text(value: datetime) -> str:
    """Aware UTC → the fixed-width text custom datetimes are stored as (strftime does not pad years < 1000)."""
    return f"{value.year:04d}" + value.strftime(ISO_DATETIME_FORMAT.removeprefix("%Y"))


@dataclass(frozen=True)
class PropertySpec:
    name: str
    kind: Kind
    sortable: bool = True
    choices: tuple[str, ...] = ()
    expression: Any = None  # SQL for the property when it is not a column of the same name
    value_of: Callable[[Any], Any] | None = None  # the property's value on a loaded row

    def operators(self) -> set[str]:
        return _ALLOWED[self.kind]

    def column_of(self, model: type) -> Any:
        return self.expression if self.expression is not None else getattr(model, self.name)

    def read(self, row: Any) -> Any:
        return self.value_of(row) if self.value_of is not None else getattr(row, self.name)


class json_array_contains(FunctionElement[bool]):  # noqa: N801 - SQL function naming
    """`tags` (a JSON array of strings) holds the given string."""

    type = Boolean()
    inherit_cache = True
    name = "json_array_contains"


@compiles(json_array_contains)
def _contains_sqlite(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = list(element.clauses)
    # Both interpolated parts are compiled SQL: a column and a bound parameter.
    return (
        f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) "  # noqa: S608
        f"WHERE json_each.value = {compiler.process(value, **kw)})"
    )


@compiles(json_array_contains, "mysql")
@compiles(json_array_contains, "mariadb")
def _contains_mysql(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = list(element.clauses)
    return f"JSON_CONTAINS({compiler.process(column, **kw)}, JSON_QUOTE({compiler.process(value, **kw)}))"


class json_array_length(FunctionElement[int]):  # noqa: N801
    inherit_cache = True
    name = "json_array_length"


@compiles(json_array_length)
def _length_sqlite(element: json_array_length, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_length({compiler.process(list(element.clauses)[0], **kw)})"


@compiles(json_array_length, "mysql")
@compiles(json_array_length, "mariadb")
def _length_mysql(element: json_array_length, compiler: SQLCompiler, **kw: Any) -> str:
    return f"JSON_LENGTH({compiler.process(list(element.clauses)[0], **kw)})"


def _fail(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message, "code": code}])


def coerce(spec: PropertySpec, value: Any, field: str) -> Any:
    """A filter value as the column's Python type; 422 when it cannot be one."""
    if value is None:
        raise _fail(field, "a value is required")
    if spec.kind in ("string", "id", "tags"):
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _fail(field, "must be a string")
        return str(value)
    if spec.kind == "enum":
        if value not in spec.choices:
            raise _fail(field, f"must be one of {', '.join(spec.choices)}")
        return value
    if spec.kind == "number":
        # json.loads accepts NaN and Infinity; no database compares with them
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _fail(field, "must be a number")
        return value
    if spec.kind == "decimal":
        try:
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                amount = Decimal(str(value).strip())
                if amount.is_finite() and abs(amount) < 10**15:  # what DECIMAL(19, 4) holds
                    return amount
        except InvalidOperation:
            pass
        raise _fail(field, "must be a decimal amount")
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(field, "must be true or false")
        return value
    if spec.kind == "isodate":
        try:
            return date.fromisoformat(value).isoformat() if isinstance(value, str) else _not_date()
        except ValueError:
            raise _fail(field, "must be a date YYYY-MM-DD") from None
    if spec.kind == "isodatetime":
        return iso_datetime_text(coerce(PropertySpec(spec.name, "datetime"), value, field))
    # datetime: ISO 8601 or epoch milliseconds
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        if isinstance(value, str):
            return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        pass
    raise _fail(field, "must be an ISO 8601 datetime or epoch milliseconds")


def _not_date() -> str:
    raise ValueError


LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE LIKE_ESCAPE: its %, _ and escape character are not wildcards.
    (SQLAlchemy renders the ESCAPE literal for the server's backslash mode, and binds the pattern as a value.)"""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def _like_pattern(token: str) -> str:
    """CONTAINS_TOKEN's pattern: the token anywhere, or where it says `*` (its one documented wildcard)."""
    escaped = escape_like(token)
    return escaped.replace("*", "%") if "*" in escaped else f"%{escaped}%"


def condition(spec: PropertySpec, column: Any, operator: str, values: list[Any]) -> ColumnElement[bool]:
    """SQL for one filter; `values` are already coerced (one, two for BETWEEN, many for IN)."""
    if spec.kind == "tags":
        return _tags_condition(column, operator, values)
    blank = column.is_(None) if spec.kind != "string" else or_(column.is_(None), column == "")
    match operator:
        case "EQ":
            return column == values[0]  # type: ignore[no-any-return]
        case "NEQ":
            return or_(column != values[0], column.is_(None))
        case "LT":
            return column < values[0]  # type: ignore[no-any-return]
        case "LTE":
            return column <= values[0]  # type: ignore[no-any-return]
        case "GT":
            return column > values[0]  # type: ignore[no-any-return]
        case "GTE":
            return column >= values[0]  # type: ignore[no-any-return]
        case "BETWEEN":
            return column.between(values[0], values[1])  # type: ignore[no-any-return]
        case "IN":
            return column.in_(values)  # type: ignore[no-any-return]
        case "NOT_IN":
            return or_(column.not_in(values), column.is_(None))
        case "HAS_PROPERTY":
            return not_(blank)
        case "NOT_HAS_PROPERTY":
            return blank  # type: ignore[no-any-return]
        case "CONTAINS_TOKEN":
            return column.like(_like_pattern(values[0]), escape=LIKE_ESCAPE)  # type: ignore[no-any-return]
    raise _fail("operator", f"unsupported operator {operator}")


def _tags_condition(column: Any, operator: str, values: list[Any]) -> ColumnElement[bool]:
    match operator:
        case "EQ" | "CONTAINS_TOKEN":
            return json_array_contains(column, literal(values[0]))  # type: ignore[return-value]
        case "IN":
            return or_(*(json_array_contains(column, literal(v)) for v in values)) if values else false()
        case "NOT_IN":
            if not values:
                return true()
            # A missing array (a custom multi select without a value) holds none of them; SQL would say NULL.
            return or_(column.is_(None), and_(*(not_(json_array_contains(column, literal(v))) for v in values)))
        case "HAS_PROPERTY":
            return and_(column.is_not(None), json_array_length(column) > 0)
        case "NOT_HAS_PROPERTY":
            return or_(column.is_(None), json_array_length(column) == 0)
    raise _fail("operator", f"unsupported operator {operator}")


def query_words(query: str) -> list[str]:
    """The words of a full-text `query`: runs of letters and digits, with `%` and `_` kept as the literal
    characters they are (`50%`, `snake_case`); other punctuation separates words."""
    return "".join(ch if ch.isalnum() or ch in "%_" else " " for ch in query.lower()).split()


def text_match(columns: list[Any], query: str, dialect: str) -> ColumnElement[bool] | None:
    """Full text over the object's text fields: every word must match (prefix match per word)."""
    words = query_words(query)
    if not words:
        return None
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import match

        # InnoDB indexes words of 3+ letters and digits; shorter ones, and words with % or _ (which its parser
        # would split or drop), fall back to LIKE, where they are matched literally.
        long_words = [w for w in words if len(w) >= 3 and w.isalnum()]
        short_words = [w for w in words if w not in long_words]
        parts: list[ColumnElement[bool]] = []
        if long_words:
            against = " ".join(f"+{w}*" for w in long_words)
            parts.append(match(*columns, against=against).in_boolean_mode())
        for word in short_words:
            parts.append(or_(*(func.lower(c).like(_like_pattern(word), escape=LIKE_ESCAPE) for c in columns)))
        return and_(*parts)
    return and_(*(or_(*(func.lower(c).like(_like_pattern(w), escape=LIKE_ESCAPE) for c in columns)) for w in words))
