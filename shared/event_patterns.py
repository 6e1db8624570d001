"""The event type pattern language webhooks' `event_types` and real-time subscriptions share.

`*` matches every event, `contact.*` every contact event, anything else only itself. Pure functions: the
webhooks capability and the real-time layer both use them, so a pattern means the same in both.
"""
from __future__ import annotations

import re

from shared.objects import event_type_hint

PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*))$")


def type_matches(pattern: str, event_type: str) -> bool:
    """`*` matches everything, `contact.*` every contact event, anything else itself."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def any_type_matches(patterns: list[str], event_type: str) -> bool:
    return any(type_matches(p, event_type) for p in patterns)


def object_prefixes(patterns: list[str]) -> set[str]:
    """The object names the patterns are about (`contact` for `contact.*`); `*` names every object."""
    return {"*" if p == "*" else p.split(".", 1)[0] for p in patterns}


def check_pattern(value: str) -> str:
    """`value` if it is a pattern; ValueError saying what is wrong (pydantic validators raise it as a 422)."""
    if not PATTERN.match(value):
        raise ValueError("must be an event type (`contact.created`), `<object>.*` or `*`")
    hint = event_type_hint(value)
    if hint is not None:  # `contacts.*` would be valid and match nothing, silently
        raise ValueError(f"event types name their object in the singular: did you mean {hint!r}?")
    return value
