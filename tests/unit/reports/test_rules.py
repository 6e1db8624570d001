"""The pure rules of the reports: ranges, rates, and exact amounts as text."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from functions.reports import rules

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize("start, end, expected", [
    (None, None, (date(2025, 12, 16), TODAY)),  # the 90 days up to today, both included
    (date(2026, 1, 1), None, (date(2026, 1, 1), TODAY)),
    (None, date(2026, 1, 31), (date(2025, 11, 3), date(2026, 1, 31))),
    (date(2026, 1, 1), date(2026, 1, 1), (date(2026, 1, 1), date(2026, 1, 1))),
    (date(2026, 6, 1), None, (date(2026, 6, 1), date(2026, 6, 1))),  # a start in the future ends there
])
def test_default_range(start: date | None, end: date | None, expected: tuple[date, date]) -> None:
    # GIVEN a requested range WHEN defaults are filled in THEN it covers the expected days
    assert rules.default_range(start, end, today=TODAY) == expected
    if start is None:
        assert (expected[1] - expected[0]).days + 1 == rules.DEFAULT_RANGE_DAYS


def test_utc_bounds_include_the_whole_last_day() -> None:
    # GIVEN one day WHEN it becomes datetime bounds THEN it runs from midnight to the next midnight, UTC
    assert rules.utc_bounds(date(2026, 2, 28), date(2026, 2, 28)) == (
        datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize("value, label", [(202603, "2026-03"), (199912, "1999-12"), (100001, "1000-01")])
def test_month_label(value: int, label: str) -> None:
    # GIVEN a YYYYMM number WHEN labelled THEN it reads YYYY-MM
    assert rules.month_label(value) == label


@pytest.mark.parametrize("won, lost, rate", [
    (0, 0, None), (1, 0, Decimal("1.0000")), (0, 3, Decimal("0.0000")), (2, 1, Decimal("0.6667")),
    (1, 7, Decimal("0.1250")),
])
def test_win_rate(won: int, lost: int, rate: Decimal | None) -> None:
    # GIVEN won and lost counts WHEN the rate is computed THEN it has four places, None when nothing closed
    assert rules.win_rate(won, lost) == rate


def test_days_from_seconds() -> None:
    # GIVEN an average duration in seconds WHEN shown in days THEN it has two places (None stays None)
    assert rules.days(Decimal(86400 * 3 + 43200)) == Decimal("3.50")
    assert rules.days(Decimal("1000.5")) == Decimal("0.01")
    assert rules.days(None) is None


@pytest.mark.parametrize("amount, places, text", [
    (Decimal("1200.5000"), 2, "1200.50"),
    (Decimal("1250.0000"), 0, "1250"),
    (Decimal("0"), 2, "0.00"),
    (Decimal("123456789012345.1234"), 2, "123456789012345.1234"),  # more places than the currency: kept
    (Decimal("33.36333000"), 2, "33.36333"),
    (Decimal("0.01522756"), 4, "0.01522756"),
    (Decimal("300.00000000"), 3, "300.000"),
    (Decimal("5E+3"), 2, "5000.00"),
])
def test_exact_text_shows_the_currency_places_and_never_rounds(amount: Decimal, places: int, text: str) -> None:
    # GIVEN an exact sum and its currency's places WHEN written THEN it has at least those places, and equals it
    assert rules.exact_text(amount, places) == text
    assert Decimal(text) == amount
