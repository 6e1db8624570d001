"""Kind rules of activities: which fields each kind takes, what it requires, where it sits on a timeline.

Pure functions (no I/O): the service calls them inside its hooks and turns their verdicts into 422s.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.errors import ValidationFailed

KINDS = ("note", "task", "call", "meeting", "email")
PRIORITIES = ("low", "normal", "high")
DIRECTIONS = ("inbound", "outbound")
LINK_TYPES = ("contacts", "companies", "deals")
TIMELINE_KINDS = (*KINDS, "history")
TASK_STATUSES = ("open", "completed", "all")

# Every kind takes these; the rest belong to one kind or two.
COMMON_FIELDS = frozenset({"kind", "owner_id", "links", "subject", "body"})
KIND_FIELDS: dict[str, frozenset[str]] = {
    "note": frozenset(),
    "task": frozenset({"due_at", "priority", "completed_at"}),
    "call": frozenset({"starts_at", "duration_minutes", "outcome"}),
    "meeting": frozenset({"starts_at", "duration_minutes", "outcome"}),
    "email": frozenset({"direction", "email_from", "email_to", "sent_at"}),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "note": ("body",),
    "task": ("subject",),
    "call": (),
    "meeting": (),
    "email": ("direction",),
}
# Fields a kind always has once created (they get a default), so an update cannot clear them.
NOT_NULL_AFTER_CREATE: dict[str, tuple[str, ...]] = {
    "note": ("body",),
    "task": ("subject", "priority", "owner_id"),
    "call": ("starts_at",),
    "meeting": ("starts_at",),
    "email": ("direction", "sent_at"),
}
# Clocks drift: a completion or a sent time this far ahead of ours is still "now".
CLOCK_SKEW = timedelta(minutes=5)


def _error(field: str, message: str, code: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": code}


def _fail(errors: list[dict[str, str]], kind: str) -> None:
    if errors:
        raise ValidationFailed(f"the request does not fit a {kind}", errors=errors)


def _foreign_fields(kind: str, names: list[str]) -> list[dict[str, str]]:
    allowed = COMMON_FIELDS | KIND_FIELDS[kind]
    return [_error(name, f"not a field of a {kind} activity", "kind_field") for name in names if name not in allowed]


def _not_in_future(values: Mapping[str, Any], field: str, now: datetime) -> list[dict[str, str]]:
    value = values.get(field)
    if value is not None and value > now + CLOCK_SKEW:
        return [_error(field, "cannot be in the future", "future")]
    return []


def _given(value: Any) -> bool:
    return value not in (None, [], {})


def check_create(values: Mapping[str, Any], *, now: datetime, default_owner_id: str | None) -> dict[str, Any]:
    """A new activity's values, checked against its kind and completed with defaults and `occurred_at`.

    `default_owner_id` is the caller when a person (the author, or the assignee of a task); an API key
    has none, so its tasks must name `owner_id`. `sent_at` (emails) becomes `occurred_at`; an
    `occurred_at` of None means "when created" (notes, undated tasks): the service stamps the creation time.
    """
    kind = values["kind"]
    errors = _foreign_fields(kind, sorted(k for k, v in values.items() if _given(v)))
    errors += [_error(name, f"required for a {kind}", "missing") for name in REQUIRED[kind]
               if not _given(values.get(name))]
    result = {k: v for k, v in values.items() if k != "sent_at"}
    if result.get("owner_id") is None:
        result["owner_id"] = default_owner_id
    if kind == "task":
        if result["owner_id"] is None:
            errors.append(_error("owner_id", "a task needs an assignee: an API key must name owner_id", "missing"))
        result["priority"] = result.get("priority") or "normal"
        errors += _not_in_future(values, "completed_at", now)
        result["occurred_at"] = values.get("due_at")
    elif kind in ("call", "meeting"):
        result["starts_at"] = values.get("starts_at") or now
        result["occurred_at"] = result["starts_at"]
    elif kind == "email":
        errors += _not_in_future(values, "sent_at", now)
        result["occurred_at"] = values.get("sent_at") or now
    else:
        result["occurred_at"] = None
    result["email_to"] = list(values.get("email_to") or [])
    _fail(errors, kind)
    return result


def check_update(
    kind: str, current: Mapping[str, Any], patch: Mapping[str, Any], *, now: datetime
) -> dict[str, Any]:
    """A patch of an existing activity (only the fields the client sent), checked against its kind.

    Returns the patch as columns: `sent_at` becomes `occurred_at`, and `occurred_at` follows a changed
    `due_at` (tasks; back to the creation time when the due time is removed) or `starts_at`.
    """
    errors = _foreign_fields(kind, sorted(patch))
    errors += [_error(name, f"a {kind} cannot be without it", "missing")
               for name in NOT_NULL_AFTER_CREATE[kind] if name in patch and not _given(patch[name])]
    errors += _not_in_future(patch, "completed_at", now) + _not_in_future(patch, "sent_at", now)
    _fail(errors, kind)
    result = {k: v for k, v in patch.items() if k != "sent_at"}
    if kind == "task" and "due_at" in patch:
        result["occurred_at"] = patch["due_at"] or current["created_at"]
    elif kind in ("call", "meeting") and "starts_at" in patch:
        result["occurred_at"] = patch["starts_at"]
    elif kind == "email" and "sent_at" in patch:
        result["occurred_at"] = patch["sent_at"]
    if "email_to" in result:
        result["email_to"] = list(result["email_to"] or [])
    return result


def ensure_task(kind: str, action: str) -> None:
    if kind != "task":
        raise ValidationFailed(f"only tasks can be {action}; this activity is a {kind}", errors=[
            _error("kind", f"only tasks can be {action}", "not_a_task")])


def normalize_links(requested: Mapping[str, list[str] | None] | None) -> dict[str, list[str]]:
    """The link types a request names, each de-duplicated and sorted (an empty list clears that type)."""
    if not requested:
        return {}
    return {kind: sorted(set(ids)) for kind, ids in requested.items() if ids is not None}


def compact_links(links: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The stored form: only types with links, in a fixed order, so two link sets compare equal."""
    return {kind: sorted(set(links[kind])) for kind in LINK_TYPES if links.get(kind)}


def merge_links(current: Mapping[str, list[str]], requested: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """PATCH semantics: the types a request names are replaced; the others keep their links."""
    return compact_links({**current, **requested})


def link_changes(
    old: Mapping[str, list[str]], new: Mapping[str, list[str]]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(added, removed) ids per link type."""
    added = {k: sorted(set(new.get(k, [])) - set(old.get(k, []))) for k in LINK_TYPES}
    removed = {k: sorted(set(old.get(k, [])) - set(new.get(k, []))) for k in LINK_TYPES}
    return {k: v for k, v in added.items() if v}, {k: v for k, v in removed.items() if v}


def activity_moment(occurred_at: datetime, completed_at: datetime | None, now: datetime) -> datetime:
    """When an activity last happened, for a deal's `last_activity_at`: its time or its completion,
    whichever is later, but never in the future (a meeting next week is not activity yet)."""
    moment = max(occurred_at, completed_at) if completed_at is not None else occurred_at
    return min(moment, now)


def parse_timeline_kinds(text: str | None) -> frozenset[str]:
    """`kinds=note,task,history` → the set; absent means every kind."""
    if text is None:
        return frozenset(TIMELINE_KINDS)
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(kinds) - set(TIMELINE_KINDS))
    if not kinds or unknown:
        raise ValidationFailed("unknown timeline kinds", errors=[
            _error("query.kinds", f"comma-separated, each one of {', '.join(TIMELINE_KINDS)}", "enum")])
    return frozenset(kinds)


def merge_newest_first(
    first: list[tuple[datetime, str, Any]], second: list[tuple[datetime, str, Any]], limit: int
) -> tuple[list[tuple[datetime, str, Any]], bool]:
    """Merge two (time, id, item) lists, each newest first, and cut at `limit`; True when more remain.

    Each list holds up to limit + 1 entries after the cursor, so whatever is cut lies after the page."""
    merged = sorted(first + second, key=lambda entry: (entry[0], entry[1]), reverse=True)
    return merged[:limit], len(merged) > limit
