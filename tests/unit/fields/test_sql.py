"""Custom values in SQL: the JSON path expressions per dialect, and properties per field type."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, String, create_engine, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from layers.records.custom import FieldDef, json_text, search_property, value_expression
from layers.records.properties import PropertySpec, coerce
from shared.errors import ValidationFailed


class _Base(DeclarativeBase):
    pass


class Row(_Base):
    __tablename__ = "items"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    custom: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


def _sql(field_type: str, dialect: object) -> str:
    expression = value_expression(Row, FieldDef(id="f", key="score", type=field_type))
    return str(select(expression).compile(dialect=dialect))  # type: ignore[arg-type]


@pytest.mark.parametrize(("field_type", "mariadb"), [
    ("text", "JSON_UNQUOTE(JSON_EXTRACT(items.custom, '$.score')) COLLATE utf8mb4_unicode_ci"),
    ("number", "CAST(JSON_EXTRACT(items.custom, '$.score') AS DOUBLE)"),
    ("currency", "CAST(JSON_UNQUOTE(JSON_EXTRACT(items.custom, '$.score')) AS DECIMAL(19, 4))"),
    ("boolean", "(CASE JSON_UNQUOTE(JSON_EXTRACT(items.custom, '$.score')) WHEN 'true' THEN 1 WHEN 'false' THEN 0 "
                "END)"),
    ("date", "JSON_UNQUOTE(JSON_EXTRACT(items.custom, '$.score'))"),
    ("multi_select", "JSON_EXTRACT(items.custom, '$.score')"),
])
def test_mysql_and_mariadb_read_the_path_typed(field_type: str, mariadb: str) -> None:
    # GIVEN a field type WHEN its value expression is compiled for MySQL/MariaDB THEN it reads the typed value
    assert mariadb in _sql(field_type, mysql.dialect(is_mariadb=True))
    assert mariadb in _sql(field_type, mysql.dialect())


def test_sqlite_reads_the_path_with_json_extract() -> None:
    # GIVEN a number and a currency field WHEN compiled for SQLite THEN json_extract (cast for amounts)
    assert "json_extract(items.custom, '$.score')" in _sql("number", sqlite.dialect())
    assert "CAST(json_extract(items.custom, '$.score') AS NUMERIC)" in _sql("currency", sqlite.dialect())


def test_a_key_outside_the_pattern_never_reaches_sql() -> None:
    # GIVEN a key that is not a valid custom field key WHEN an expression is built THEN it is refused
    with pytest.raises(ValueError):
        json_text(Row.custom, "x') OR 1=1 --")


@pytest.mark.parametrize(("field_type", "kind", "sortable"), [
    ("text", "string", True), ("long_text", "string", False), ("email", "string", True), ("url", "string", True),
    ("number", "number", True), ("currency", "decimal", True), ("date", "isodate", True),
    ("datetime", "isodatetime", True), ("boolean", "boolean", True), ("single_select", "enum", True),
    ("multi_select", "tags", False),
])
def test_each_type_searches_as_a_property_kind(field_type: str, kind: str, sortable: bool) -> None:
    # GIVEN a definition WHEN it becomes a search property THEN its kind decides the operators
    spec = search_property(FieldDef(id="f", key="k", type=field_type, options=("A",)), Row)
    assert (spec.name, spec.kind, spec.sortable) == ("custom_fields.k", kind, sortable)
    value = True if field_type == "boolean" else "v"
    assert spec.read(Row(id="1", custom={"k": value})) == (1 if field_type == "boolean" else "v")  # cursor values
    assert spec.read(Row(id="1", custom={})) is None


def test_expressions_run_on_sqlite() -> None:
    # GIVEN rows with and without values on SQLite
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Row(id="1", custom={"score": 5, "ok": True, "tags": ["a"]}), Row(id="2", custom={})])
        session.flush()
        number = value_expression(Row, FieldDef(id="f", key="score", type="number"))
        flag = value_expression(Row, FieldDef(id="f", key="ok", type="boolean"))
        tags = value_expression(Row, FieldDef(id="f", key="tags", type="multi_select"))

        # WHEN filtered on them THEN absent values are NULL and present ones typed
        assert session.scalars(select(Row.id).where(number > 4)).all() == ["1"]
        assert session.scalars(select(Row.id).where(flag.is_(None))).all() == ["2"]
        assert session.scalars(select(Row.id).where(flag == True)).all() == ["1"]  # noqa: E712
        assert session.scalars(select(Row.id).where(tags.is_(None))).all() == ["2"]


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("decimal", "12.50", Decimal("12.50")),
    ("decimal", 12, Decimal("12")),
    ("decimal", 12.5, Decimal("12.5")),
    ("isodatetime", "0999-12-31T23:00:00-02:00", "1000-01-01T01:00:00.000000Z"),
    ("isodatetime", "2026-03-01T09:30:00Z", "2026-03-01T09:30:00.000000Z"),
    ("isodate", "2026-03-01", "2026-03-01"),
])
def test_filter_values_coerce_to_what_the_column_compares(kind: str, value: Any, expected: Any) -> None:
    # GIVEN a filter value for a custom property kind WHEN coerced THEN it compares like the stored form
    assert coerce(PropertySpec("p", kind), value, "value") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "value"), [
    ("decimal", "lots"), ("decimal", True), ("decimal", "NaN"), ("decimal", "1e16"), ("decimal", float("inf")),
    ("number", float("nan")), ("number", float("inf")), ("number", "5"),
])
def test_filter_values_that_no_database_can_compare_are_422(kind: str, value: Any) -> None:
    # GIVEN a value that is not a finite amount WHEN coerced for a filter THEN 422
    with pytest.raises(ValidationFailed):
        coerce(PropertySpec("p", kind), value, "value")  # type: ignore[arg-type]
