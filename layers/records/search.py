"""The search language (filter groups, sorts, query) and keyset pages that never skip or repeat."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator
from sqlalchemy import ColumnElement, Select, and_, false, or_, true

from layers.records.owners import OwnedBy
from layers.records.properties import Operator, PropertySpec, coerce, condition
from shared.clock import as_utc, isoformat
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import ValidationFailed
from shared.schemas import StrictModel


class Filter(StrictModel):
    property: str
    operator: Operator
    value: Any = None
    high_value: Any = None
    values: list[Any] | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _operands(self) -> Filter:
        op = self.operator
        if op in ("IN", "NOT_IN"):
            if self.values is None:
                raise ValueError(f"{op} takes `values`")
        elif op == "BETWEEN":
            if self.value is None or self.high_value is None:
                raise ValueError("BETWEEN takes `value` and `high_value`")
        elif op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            if self.value is not None or self.values is not None:
                raise ValueError(f"{op} takes no value")
        elif self.value is None:
            raise ValueError(f"{op} takes `value`")
        return self


class FilterGroup(StrictModel):
    filters: list[Filter] = Field(min_length=1, max_length=10)


class Sort(StrictModel):
    property: str
    direction: str = Field("asc", pattern="^(asc|desc)$")


class SearchRequest(StrictModel):
    filter_groups: list[FilterGroup] = Field(default_factory=list, max_length=5, description="OR of AND-groups")
    query: str | None = Field(None, max_length=200, description="Full text over the object's text fields")
    sorts: list[Sort] = Field(default_factory=list, max_length=3)
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    include_archived: bool = False
    owned_by: OwnedBy | None = Field(None, description="Only records owned by the caller (`me`) or by them or a "
                                                       "teammate (`my_team`); people only, not API keys")


@dataclass(frozen=True)
class SortKey:
    name: str
    column: Any
    descending: bool
    spec: PropertySpec


def where_clause(
    groups: list[FilterGroup], properties: dict[str, PropertySpec], model: type
) -> ColumnElement[bool] | None:
    if not groups:
        return None
    ors = []
    for g, group in enumerate(groups):
        ands: list[ColumnElement[bool] | None] = []
        for f, flt in enumerate(group.filters):
            at = f"filter_groups.{g}.filters.{f}"
            spec = properties.get(flt.property)
            if spec is None:
                raise _unknown(f"{at}.property", flt.property)
            if flt.operator not in spec.operators():
                raise ValidationFailed(
                    f"{flt.operator} does not apply to {flt.property}",
                    errors=[{"field": f"{at}.operator", "message": f"not valid for a {spec.kind} property",
                             "code": "operator"}],
                )
            if flt.operator in ("IN", "NOT_IN"):
                values = [coerce(spec, v, f"{at}.values.{i}") for i, v in enumerate(flt.values or [])]
                if not values:
                    ands.append(false() if flt.operator == "IN" else None)
                    continue
            elif flt.operator == "BETWEEN":
                values = [coerce(spec, flt.value, f"{at}.value"), coerce(spec, flt.high_value, f"{at}.high_value")]
            elif flt.operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
                values = []
            else:
                values = [coerce(spec, flt.value, f"{at}.value")]
            ands.append(condition(spec, spec.column_of(model), flt.operator, values))
        # true() keeps a group whose filters all match everything (NOT_IN []) from vanishing from the OR.
        ors.append(and_(true(), *[a for a in ands if a is not None]))
    return or_(*ors)


def _unknown(field: str, name: str) -> ValidationFailed:
    return ValidationFailed(
        f"unknown property {name!r}",
        errors=[{"field": field, "message": "unknown property", "code": "unknown_property"}],
    )


def sort_keys(sorts: list[Sort], properties: dict[str, PropertySpec], model: type) -> list[SortKey]:
    keys = []
    for i, sort in enumerate(sorts):
        spec = properties.get(sort.property)
        if spec is None:
            raise _unknown(f"sorts.{i}.property", sort.property)
        if not spec.sortable:
            raise ValidationFailed(
                f"cannot sort by {sort.property}",
                errors=[{"field": f"sorts.{i}.property", "message": "not sortable", "code": "not_sortable"}],
            )
        keys.append(SortKey(spec.name, spec.column_of(model), sort.direction == "desc", spec))
    tie_descending = keys[0].descending if keys else True  # default order: newest first
    keys.append(SortKey("id", model.id, tie_descending, PropertySpec("id", "id")))  # type: ignore[attr-defined]
    return keys


def signature(keys: list[SortKey], extra: str = "") -> str:
    text = ",".join(f"{k.name}:{'d' if k.descending else 'a'}" for k in keys) + "|" + extra
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def apply_keyset(
    statement: Select[Any], keys: list[SortKey], cursor: str | None, secret: str, sig: str, limit: int
) -> Select[Any]:
    # NULL sorts lowest on MySQL/MariaDB and SQLite alike, so "after" is written with that order.
    ordering = [k.column.desc() if k.descending else k.column.asc() for k in keys]
    statement = statement.order_by(*ordering).limit(limit + 1)
    if cursor is None:
        return statement
    position = decode_cursor(cursor, secret)
    if position.get("s") != sig or len(position.get("k", [])) != len(keys):
        raise ValidationFailed(
            "this cursor belongs to another query",
            errors=[{"field": "cursor", "message": "cursor does not match the sorts or filters", "code": "invalid"}],
        )
    values = [_load(k, v) for k, v in zip(keys, position["k"], strict=True)]
    branches = []
    for i, key in enumerate(keys):
        parts = [_equal(keys[j].column, values[j]) for j in range(i)]
        parts.append(_after(key, values[i]))
        branches.append(and_(*parts))
    return statement.where(or_(*branches))


def _equal(column: Any, value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value  # type: ignore[no-any-return]


def _after(key: SortKey, value: Any) -> ColumnElement[bool]:
    if key.descending:
        return false() if value is None else or_(key.column < value, key.column.is_(None))
    return key.column.is_not(None) if value is None else key.column > value  # type: ignore[no-any-return]


def _dump(value: Any) -> Any:
    return isoformat(value) if isinstance(value, datetime) else value


def _load(key: SortKey, value: Any) -> Any:
    # Exact amounts travel as strings: custom currency ("decimal"), and DECIMAL columns of "number" kind.
    if value is not None and (key.spec.kind == "decimal" or (isinstance(value, str) and key.spec.kind == "number")):
        return Decimal(value)
    if value is not None and key.spec.kind == "datetime":
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return value


def next_cursor(
    rows: list[Any], keys: list[SortKey], limit: int, secret: str, sig: str
) -> tuple[list[Any], str | None]:
    """Trim the look-ahead row; the cursor is the last row's sort values."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor({"s": sig, "k": [_dump(k.spec.read(last)) for k in keys]}, secret)


def describe(request: SearchRequest) -> str:
    """What makes two requests the same query (a cursor is valid only for its own query)."""
    described: dict[str, Any] = {"f": [g.model_dump() for g in request.filter_groups], "q": request.query,
                                 "a": request.include_archived}
    if request.owned_by is not None:  # only when set, so cursors of unfiltered queries keep their signature
        described["o"] = request.owned_by
    return json.dumps(described, sort_keys=True, default=str)
