"""Reading a provider's requested wait from its 429 answer."""
from __future__ import annotations

from collections.abc import Mapping


def seconds_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """`retry-after-ms` or `retry-after` (seconds; an HTTP date is not honoured — treated as unknown)."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def seconds_from_duration(value: object) -> float | None:
    """A protobuf Duration as JSON ("2s", "1.5s"), as Google's RetryInfo carries it."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        seconds = float(value[:-1])
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
