"""Pure rules of automations: which event meets which trigger, loops, the failure policy, schedules."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from shared.objects import EVENT_NAME_OF, PLURAL_OF

# A rule's object type is spelled as everywhere in the API (plural, as in URLs); its events are named with
# the singular (`contact.created`).
OBJECT_TYPES = ("contacts", "companies", "deals", "activities")
TAGGED = frozenset({"contacts", "companies", "deals"})  # objects with a `tags` property
TASK_LINKS = frozenset({"contacts", "companies", "deals"})  # objects a task can be linked to

MAX_CHAIN = 5  # rules in one causal chain before the engine stops it, whichever rules they are
PAUSE_AFTER = 5  # consecutive failed runs before a rule is paused
SCHEDULE_CAP = 1_000  # records one scheduled firing acts on (the rest wait for the next firing)

_EVENT_OF = {"record_created": "created", "record_updated": "updated", "field_changed": "updated"}
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # AWS numbers them 1-7 from Sunday


def event_type_of(object_type: str, trigger_type: str) -> str | None:
    """The event a trigger listens to (None for schedules, which no event fires)."""
    if trigger_type == "deal_stage_changed":
        return "deal.stage_changed"
    suffix = _EVENT_OF.get(trigger_type)
    return f"{EVENT_NAME_OF[object_type]}.{suffix}" if suffix else None


def interest(triggers: set[tuple[str, str, str]], pending: Mapping[str, set[str]]) -> set[tuple[str, str]]:
    """Of the pending (workspace, event type) pairs, those meeting the event a rule's trigger listens to,
    given the (workspace, object type, trigger type) of the active event rules. Conditions, fields and
    stages are not looked at: they need the event itself, which the evaluator reads."""
    listened = {(workspace_id, event_type_of(object_type, trigger_type))
                for workspace_id, object_type, trigger_type in triggers}
    return {(workspace_id, event_type) for workspace_id, types in pending.items() for event_type in types
            if (workspace_id, event_type) in listened}


def object_type_of(event_type: str) -> str | None:
    """The object type of the records an event is about (`contact.created` → `contacts`), if rules have it."""
    found = PLURAL_OF.get(event_type.split(".", 1)[0])
    return found if found in OBJECT_TYPES else None


def trigger_matches(object_type: str, trigger: dict[str, Any], event_type: str, data: dict[str, Any]) -> bool:
    if event_type != event_type_of(object_type, trigger["type"]):
        return False
    if trigger["type"] == "field_changed":
        return trigger.get("field") in (data.get("changes") or {})
    if trigger["type"] == "deal_stage_changed":
        for name in ("to_stage_id", "from_stage_id"):
            if trigger.get(name) and trigger[name] != data.get(name):
                return False
    return True


def loop_reason(rule_id: str, causation: list[str]) -> str | None:
    """Why a run must not act: the rule is already in the chain of rules that caused the event, or the
    chain is too long (rules A→B→C→D→E→... that never meet themselves still must end)."""
    if rule_id in causation:
        return f"loop: this rule caused the event (chain: {' → '.join(causation)})"
    if len(causation) >= MAX_CHAIN:
        return f"loop: {len(causation)} rules in a row caused the event (chain: {' → '.join(causation)})"
    return None


def pause_reason(consecutive_failures: int, last_error: str) -> str | None:
    if consecutive_failures < PAUSE_AFTER:
        return None
    return f"failed {consecutive_failures} times in a row: {last_error}"[:500]


# ---- references -----------------------------------------------------------------------------------------
# Every id a rule names must name something of the rule's own workspace that exists when the rule is written
# (an id of another workspace would either leak across tenants when the action runs, or fail every run).
# The kinds: a member, a pipeline, a stage, a webhook subscription, the workspace itself, or a record of a
# record object type (plural, as record services name them).
MEMBER, PIPELINE, STAGE, WEBHOOK, WORKSPACE = "member", "pipeline", "stage", "webhook", "workspace"
# Record properties holding another thing's id (in update_field actions and in conditions) → its kind.
# `id` is the rule's own object; a unit test keeps every `id` property of the record services listed here.
ID_PROPERTIES = {"owner_id": MEMBER, "company_id": "companies", "pipeline_id": PIPELINE, "stage_id": STAGE,
                 "contact_ids": "contacts", "primary_contact_id": "contacts"}
_FILTER_OPERANDS = ("value", "high_value", "values")


@dataclass(frozen=True)
class Reference:
    """One id a rule names: where (the field a 422 names), what kind of thing it must name, the id."""

    field: str
    kind: str
    id: str


def references(object_type: str, trigger: dict[str, Any], conditions: dict[str, Any] | None,
               actions: list[dict[str, Any]]) -> list[Reference]:
    """Every id in a rule (its JSON form, as stored), in the order a client wrote them."""
    found = [Reference(f"trigger.{name}", STAGE, str(trigger[name]))
             for name in ("to_stage_id", "from_stage_id") if trigger.get(name)]
    for g, group in enumerate((conditions or {}).get("filter_groups") or []):
        for f, flt in enumerate(group.get("filters") or []):
            kind = object_type if flt.get("property") == "id" else ID_PROPERTIES.get(flt.get("property", ""))
            if kind is None:
                continue
            at = f"conditions.filter_groups.{g}.filters.{f}"
            for operand in _FILTER_OPERANDS:
                found += _ids_at(f"{at}.{operand}", kind, flt.get(operand))
    for index, action in enumerate(actions):
        at = f"actions.{index}"
        if action["type"] == "create_task" and action.get("owner", "record_owner") != "record_owner":
            found.append(Reference(f"{at}.owner", MEMBER, str(action["owner"])))
        elif action["type"] == "update_field" and action.get("field") in ID_PROPERTIES:
            found += _ids_at(f"{at}.value", ID_PROPERTIES[action["field"]], action.get("value"))
        elif action["type"] == "send_webhook":
            found.append(Reference(f"{at}.subscription_id", WEBHOOK, str(action["subscription_id"])))
        elif action["type"] == "enqueue_job":
            # The job runs in the workspace its payload names: never another one. Its other ids are looked
            # up by the job in that workspace, so they cannot reach across.
            workspace_id = (action.get("payload") or {}).get("workspace_id")
            if workspace_id is not None:
                found.append(Reference(f"{at}.payload.workspace_id", WORKSPACE, str(workspace_id)))
    return found


def _ids_at(field: str, kind: str, value: Any) -> list[Reference]:
    """An id, or a list of ids (`values`, `contact_ids`: each named by its index); nothing for null."""
    if isinstance(value, list):
        return [Reference(f"{field}.{i}", kind, str(v)) for i, v in enumerate(value) if v is not None]
    return [] if value is None else [Reference(field, kind, str(value))]


# ---- schedules -------------------------------------------------------------------------------------------
def check_schedule(expression: str) -> None:
    """Raise ValueError when the expression is not a rate or cron this engine can run."""
    next_run(expression, datetime(2000, 1, 1, tzinfo=UTC))


def next_run(expression: str, after: datetime) -> datetime:
    """The first firing strictly after `after` (UTC)."""
    rate = _RATE.match(expression.strip())
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if amount < 1:
            raise ValueError("a rate is at least 1")
        return after + timedelta(**{f"{unit}s": amount})
    cron = _CRON.match(expression.strip())
    if not cron:
        raise ValueError("expected rate(N minutes|hours|days) or cron(min hour day-of-month month day-of-week year)")
    fired = _cron_trigger(cron.group(1)).get_next_fire_time(None, after + timedelta(seconds=1))
    if fired is None:
        raise ValueError("the cron expression never fires again")
    return fired.astimezone(UTC)  # type: ignore[no-any-return]


def _cron_trigger(fields_text: str) -> CronTrigger:
    fields = fields_text.split()
    if len(fields) != 6:
        raise ValueError("cron takes 6 fields: minute hour day-of-month month day-of-week year")
    minute, hour, day, month, weekday, year = fields
    if day != "?" and weekday != "?":
        raise ValueError("cron: one of day-of-month and day-of-week must be ?")
    if any(mark in field for field in fields for mark in ("W", "#")) or weekday.endswith("L"):
        raise ValueError("cron: W, # and L in day-of-week are not supported")
    day = "last" if day == "L" else day
    try:
        return CronTrigger(minute=minute, hour=hour, day=None if day == "?" else day, month=month,
                           day_of_week=None if weekday == "?" else _weekdays(weekday), year=year, timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"cron: {exc}") from None


def _weekdays(value: str) -> str:
    """AWS day-of-week (1-7 from Sunday, or SUN-SAT) → APScheduler's names, which start on Monday."""
    def name(token: str) -> str:
        if token.isdigit():
            number = int(token)
            if not 1 <= number <= 7:
                raise ValueError("cron: day-of-week numbers are 1-7 (1 = Sunday)")
            return _DAYS[number - 1].lower()
        return token.lower()

    parts = []
    for part in value.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/", 1)
            step = "/" + step
        parts.append("-".join(name(t) if t != "*" else t for t in part.split("-")) + step)
    return ",".join(parts)
