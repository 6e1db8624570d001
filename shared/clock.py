"""One place that says what time it is, so tests and rules agree.

`monotonic()` is the clock that time budgets are measured on (an import's chunk stops when its budget
is spent). Tests replace it with `use_monotonic(fake)` so what a budget cuts depends on the clock they
drive, never on how fast the machine running them is.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_monotonic: Callable[[], float] = time.monotonic


def monotonic() -> float:
    """Seconds on a clock that never goes back: what work budgets are measured on."""
    return _monotonic()


def use_monotonic(clock: Callable[[], float] | None) -> None:
    """Measure budgets on `clock` from now on (None: the real monotonic clock again)."""
    global _monotonic
    _monotonic = time.monotonic if clock is None else clock


def utcnow() -> datetime:
    """Aware UTC now, truncated to microseconds (what MySQL DATETIME(6) keeps)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat naive datetimes read back from the database as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def isoformat(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")
