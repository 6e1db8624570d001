"""Pure rules of the reports: date ranges, rates, and how exact amounts are written."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

DEFAULT_RANGE_DAYS = 90
RATE_PLACES = Decimal("0.0001")
DAY_PLACES = Decimal("0.01")
SECONDS_PER_DAY = Decimal(86400)


def default_range(start: date | None, end: date | None, *, today: date) -> tuple[date, date]:
    """The days a report covers: as given, or the 90 days up to `end` (or today)."""
    end = end if end is not None else (today if start is None else max(today, start))
    start = start if start is not None else end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    return start, end


def utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """Whole UTC days, `end` included: [start 00:00Z, the day after end 00:00Z)."""
    return (datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))


def month_label(year_month: int) -> str:
    """202603 → "2026-03"."""
    return f"{year_month // 100:04d}-{year_month % 100:02d}"


def win_rate(won: int, lost: int) -> Decimal | None:
    """won / (won + lost), to four places; None when nothing was closed."""
    closed = won + lost
    if closed == 0:
        return None
    return (Decimal(won) / Decimal(closed)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)


def days(seconds: Decimal | None) -> Decimal | None:
    """An average duration in seconds, as days to two places."""
    if seconds is None:
        return None
    return (seconds / SECONDS_PER_DAY).quantize(DAY_PLACES, rounding=ROUND_HALF_EVEN)


def exact_text(amount: Decimal, places: int) -> str:
    """An exact sum as text with at least `places` decimals (the currency's minor units), more only when
    the value needs them: "1200.50" EUR, "1250" JPY, "33.36333" for 100.10 × 0.3333. Never rounded."""
    rounded = amount.quantize(Decimal(1).scaleb(-places))
    return format(rounded if rounded == amount else amount.normalize(), "f")
