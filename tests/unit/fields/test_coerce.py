"""coerce_value: every custom field type, its stored form and its edge cases (pure, no database)."""
from __future__ import annotations

from typing import Any

import pytest

from layers.records.custom import FieldDef, coerce_value, unique_token
from shared.errors import ValidationFailed

OPTIONS = ("Gold", "Silver", "Bronze")


def _def(field_type: str, options: tuple[str, ...] = ()) -> FieldDef:
    return FieldDef(id="01JFIELD", key="k", type=field_type, options=options)


def _coerce(field_type: str, value: Any) -> Any:
    return coerce_value(_def(field_type, OPTIONS), value, "custom_fields.k")


@pytest.mark.parametrize(("field_type", "value", "stored"), [
    ("text", "  Hello  ", "Hello"),  # trimmed like built-in strings
    ("text", "   ", None),  # blank is "no value"
    ("text", "x" * 1_000, "x" * 1_000),
    ("long_text", "line 1\nline 2", "line 1\nline 2"),
    ("long_text", "y" * 65_000, "y" * 65_000),
    ("number", 42, 42),
    ("number", -3.25, -3.25),
    ("number", 0, 0),
    ("number", 999_999_999_999_999, 999_999_999_999_999),
    ("currency", "1250.50", "1250.50"),  # the client's scale is kept, exactly
    ("currency", 1250, "1250"),  # an integer is exact too
    ("currency", "-0.0001", "-0.0001"),
    ("currency", "-0.00", "0.00"),  # no negative zero
    ("currency", "007.5", "7.5"),
    ("currency", " 12.3 ", "12.3"),
    ("currency", "999999999999999.9999", "999999999999999.9999"),  # the largest DECIMAL(19, 4)
    ("date", "2026-02-28", "2026-02-28"),
    ("date", "0099-01-01", "0099-01-01"),
    ("datetime", "2026-03-01T09:30:00Z", "2026-03-01T09:30:00.000000Z"),
    ("datetime", "2026-03-01T11:30:00+02:00", "2026-03-01T09:30:00.000000Z"),  # stored in UTC
    ("datetime", "2026-03-01T09:30:00.123456-01:00", "2026-03-01T10:30:00.123456Z"),
    ("datetime", "0999-12-31T23:00:00Z", "0999-12-31T23:00:00.000000Z"),  # fixed width: years < 1000 padded
    ("boolean", True, True),
    ("boolean", False, False),
    ("single_select", "Gold", "Gold"),
    ("single_select", " gold ", "Gold"),  # matched ignoring case, stored as the option is spelled
    ("multi_select", ["Gold", "silver", "GOLD", "Silver"], ["Gold", "Silver"]),  # de-duplicated, order kept
    ("multi_select", [], None),  # empty is "no value"
    ("email", "  Ada@Example.COM ", "ada@example.com"),
    ("url", "https://example.com/a?b=c", "https://example.com/a?b=c"),
    ("url", " http://localhost:8080 ", "http://localhost:8080"),
    ("url", "HTTPS://Example.com", "HTTPS://Example.com"),
    ("url", "http://[::1]:80/x", "http://[::1]:80/x"),
])
def test_valid_values_are_stored_in_their_canonical_form(field_type: str, value: Any, stored: Any) -> None:
    # GIVEN a field of the type WHEN a valid value is coerced THEN it is stored in its canonical form
    assert _coerce(field_type, value) == stored


@pytest.mark.parametrize(("field_type", "value"), [
    ("text", 5),
    ("text", "x" * 1_001),
    ("text", None),
    ("long_text", "y" * 65_001),
    ("number", True),  # a boolean is not a number
    ("number", "5"),  # nor is a numeric string
    ("number", float("nan")),
    ("number", float("inf")),
    ("number", 10**15),
    ("number", -1e16),
    ("currency", 12.5),  # a float is never an amount
    ("currency", "12.34567"),  # more than 4 decimal places
    ("currency", "1000000000000000"),  # 16 digits: more than DECIMAL(19, 4) holds
    ("currency", "1e3"),
    ("currency", "NaN"),
    ("currency", "Infinity"),
    ("currency", "1,000.00"),
    ("currency", True),
    ("currency", ""),
    ("date", "2026-02-30"),
    ("date", "20260228"),  # the basic format is not YYYY-MM-DD
    ("date", "2026-W09-1"),
    ("date", "2026-02-28T00:00:00Z"),
    ("date", 20260228),
    ("datetime", "2026-03-01T09:30:00"),  # without a time zone: ambiguous, refused
    ("datetime", "2026-03-01"),
    ("datetime", "yesterday"),
    ("datetime", 1_700_000_000_000),
    ("datetime", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
    ("boolean", "true"),
    ("boolean", 1),
    ("single_select", "Platinum"),
    ("single_select", ["Gold"]),
    ("multi_select", "Gold"),
    ("multi_select", ["Gold", "Platinum"]),
    ("multi_select", [{"a": 1}]),
    ("email", "not-an-email"),
    ("email", 5),
    ("url", "ftp://example.com/file"),
    ("url", "javascript:alert(1)"),
    ("url", "example.com"),  # no scheme
    ("url", "http://"),  # no host
    ("url", "http://[::1"),  # a broken IPv6 host
    ("url", "http://exa mple.com"),
    ("url", "https://example.com/" + "a" * 2_048),
    ("url", 7),
])
def test_misfits_are_422_naming_the_field(field_type: str, value: Any) -> None:
    # GIVEN a value that does not fit the type
    # WHEN it is coerced
    with pytest.raises(ValidationFailed) as caught:
        _coerce(field_type, value)

    # THEN the error names custom_fields.<key>
    assert caught.value.errors is not None
    assert [e["field"] for e in caught.value.errors] == ["custom_fields.k"]


def test_an_unknown_type_is_refused() -> None:
    # GIVEN a definition of a type this code does not know WHEN a value is coerced THEN 422
    with pytest.raises(ValidationFailed):
        coerce_value(_def("geo_point"), "1,2", "custom_fields.k")


@pytest.mark.parametrize(("field_type", "a", "b"), [
    ("text", "ACME", "acme"),
    ("text", " acme", "acme "),
    ("email", "ada@example.com", "ADA@example.com"),
    ("number", 1, 1.0),
    ("number", 100, 100.00),
    ("single_select", "Gold", "gold"),
])
def test_unique_tokens_equal_for_values_that_are_the_same(field_type: str, a: Any, b: Any) -> None:
    # GIVEN two spellings of one value WHEN tokenised THEN they clash
    assert unique_token(_def(field_type), a) == unique_token(_def(field_type), b)


@pytest.mark.parametrize(("field_type", "a", "b"), [
    ("text", "José", "Jose"),  # accents matter (a database collation would ignore them)
    ("text", "x" * 300 + "a", "x" * 300 + "b"),  # long values differ beyond any column prefix
    ("number", 1, 1.5),
    ("number", 10, 1),
])
def test_unique_tokens_differ_for_different_values(field_type: str, a: Any, b: Any) -> None:
    # GIVEN two different values WHEN tokenised THEN they do not clash, and fit the claim column
    token_a, token_b = unique_token(_def(field_type), a), unique_token(_def(field_type), b)
    assert token_a != token_b
    assert len(token_a) <= 255
