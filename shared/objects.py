"""One spelling of object types across the API, and a hint for the other one.

Object types are plural everywhere a client names one: in URLs (`/v1/contacts`), in bodies and queries
(`object_type` of fields, imports, exports and automations; `?object=`; `from_object`/`to_object` of
associations) and in events' `object_type`. Event *types* keep their own form, `<singular>.<verb>`
(`contact.created`, `deal.*`): they name what happened, as the event log and webhooks always have.

Each spelling is accepted only where it belongs; the other one is a 422 that says which to use, because
`contact` for `contacts` (or `contacts.*` for `contact.*`) is an easy slip that would otherwise read as
"not allowed" with no clue, or, for an event pattern, silently match nothing.
"""
from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# singular → plural, for every object a client can name by type
PLURAL_OF = {"contact": "contacts", "company": "companies", "deal": "deals", "activity": "activities"}
# plural → singular, for the first part of event types (records, and the other things events are about)
EVENT_NAME_OF = {**{plural: singular for singular, plural in PLURAL_OF.items()}, "pipelines": "pipeline",
                 "teams": "team", "workspaces": "workspace", "associations": "association", "fields": "field",
                 "tasks": "task", "webhooks": "webhook", "automations": "automation"}


def object_type_hint(value: str) -> str | None:
    """The plural object type a client probably meant by `value` (None when it is not a known singular)."""
    return PLURAL_OF.get(value.strip().lower()) if isinstance(value, str) else None


_UNKNOWN = "object type '{value}' is not known; did you mean '{hint}'?"


def unknown_object_type(value: str, hint: str) -> str:
    return _UNKNOWN.format(value=value, hint=hint)


def plural_object_type(*allowed: str) -> BeforeValidator:
    """For an object type field taking `allowed` (plurals): the singular of one of them is a 422 naming the
    plural; anything else goes on to the field's own check (its Literal)."""
    def check(value: Any) -> Any:
        hint = object_type_hint(value)
        if hint is not None and hint in allowed:
            raise PydanticCustomError("object_type", _UNKNOWN, {"value": value, "hint": hint})
        return value

    return BeforeValidator(check)


def event_type_hint(pattern: str) -> str | None:
    """The event type or pattern a client probably meant when they named its object in the plural
    (`contacts.created` → `contact.created`, `deals.*` → `deal.*`); None when the pattern is not that slip."""
    prefix, dot, rest = pattern.partition(".")
    singular = EVENT_NAME_OF.get(prefix)
    return f"{singular}.{rest}" if dot and singular is not None else None
