"""Queries of automations, in the caller's unit of work (tenancy applies unless it is the unscoped sweep)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from functions.automations.models import AutomationRule, AutomationRun
from layers.db.uow import UnitOfWork
from shared.clock import utcnow


def get(uow: UnitOfWork, rule_id: str) -> AutomationRule | None:
    row = uow.session.get(AutomationRule, rule_id)
    return row if row is not None and row.archived_at is None else None


def page(
    uow: UnitOfWork, *, status: str | None, object_type: str | None, after_id: str | None, limit: int
) -> list[AutomationRule]:
    statement = (select(AutomationRule).where(AutomationRule.archived_at.is_(None))
                 .order_by(AutomationRule.id).limit(limit + 1))
    if status is not None:
        statement = statement.where(AutomationRule.status == status)
    if object_type is not None:
        statement = statement.where(AutomationRule.object_type == object_type)
    if after_id is not None:
        statement = statement.where(AutomationRule.id > after_id)
    return list(uow.session.scalars(statement))


def active_event_rules(uow: UnitOfWork, object_type: str) -> list[AutomationRule]:
    """The workspace's active rules of an object type that events can trigger, oldest first."""
    return list(uow.session.scalars(
        select(AutomationRule)
        .where(AutomationRule.status == "active", AutomationRule.object_type == object_type,
               AutomationRule.trigger_type != "schedule", AutomationRule.archived_at.is_(None))
        .order_by(AutomationRule.id)))


def due_schedule_rules(uow: UnitOfWork, now: datetime, *, limit: int) -> list[AutomationRule]:
    """Across workspaces (an unscoped unit of work): active schedule rules whose firing is due."""
    return list(uow.session.scalars(
        select(AutomationRule)
        .where(AutomationRule.trigger_type == "schedule", AutomationRule.status == "active",
               AutomationRule.next_run_at <= now, AutomationRule.archived_at.is_(None))
        .order_by(AutomationRule.next_run_at, AutomationRule.id).limit(limit)))


def claim_firing(uow: UnitOfWork, rule_id: str, due_at: datetime, next_at: datetime) -> bool:
    """Move the rule's next firing on, if nobody else did: the sweep that moves it owns this firing."""
    result = uow.session.execute(
        update(AutomationRule)
        .where(AutomationRule.id == rule_id, AutomationRule.next_run_at == due_at, AutomationRule.status == "active")
        .values(next_run_at=next_at)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def note_run(uow: UnitOfWork, rule_id: str, *, status: str, consecutive_failures: int | None) -> None:
    """A run's mark on its rule. A plain UPDATE, not the ORM's versioned one: runs are not edits, so they
    neither bump the rule's ETag nor clash with an admin's edit made at the same moment."""
    values: dict[str, object] = {"last_run_at": utcnow(), "last_run_status": status}
    if consecutive_failures is not None:
        values["consecutive_failures"] = consecutive_failures
    uow.session.execute(update(AutomationRule).where(AutomationRule.id == rule_id).values(**values)
                        .execution_options(synchronize_session=False))


def add_failure(uow: UnitOfWork, rule_id: str) -> int:
    """Count one more failed run in a row (in SQL, so concurrent runs add up); the new count."""
    uow.session.execute(
        update(AutomationRule).where(AutomationRule.id == rule_id)
        .values(consecutive_failures=AutomationRule.consecutive_failures + 1, last_run_at=utcnow(),
                last_run_status="failed")
        .execution_options(synchronize_session=False))
    return int(uow.session.scalar(select(AutomationRule.consecutive_failures)
                                  .where(AutomationRule.id == rule_id)) or 0)


def pause(uow: UnitOfWork, rule_id: str, reason: str) -> None:
    """The engine pausing a rule is a change an admin must see: the version (ETag) moves on."""
    uow.session.execute(
        update(AutomationRule).where(AutomationRule.id == rule_id, AutomationRule.status == "active")
        .values(status="paused", paused_reason=reason, version=AutomationRule.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False))


def get_run(uow: UnitOfWork, rule_id: str, run_id: str) -> AutomationRun | None:
    row = uow.session.get(AutomationRun, run_id)
    return row if row is not None and row.rule_id == rule_id else None


def runs_page(
    uow: UnitOfWork, rule_id: str, *, status: str | None, before_id: str | None, limit: int
) -> list[AutomationRun]:
    """Newest first (ids are ULIDs, so id order is start order)."""
    statement = (select(AutomationRun).where(AutomationRun.rule_id == rule_id)
                 .order_by(AutomationRun.id.desc()).limit(limit + 1))
    if status is not None:
        statement = statement.where(AutomationRun.status == status)
    if before_id is not None:
        statement = statement.where(AutomationRun.id < before_id)
    return list(uow.session.scalars(statement))


def event_triggers(uow: UnitOfWork, workspace_ids: set[str]) -> set[tuple[str, str, str]]:
    """Unscoped: (workspace id, object type, trigger type) of every active rule that events can trigger
    in these workspaces (the relay's question: which events have a rule to meet)."""
    return {(w, o, t) for w, o, t in uow.session.execute(
        select(AutomationRule.workspace_id, AutomationRule.object_type, AutomationRule.trigger_type).distinct()
        .where(AutomationRule.workspace_id.in_(sorted(workspace_ids)), AutomationRule.status == "active",
               AutomationRule.trigger_type != "schedule", AutomationRule.archived_at.is_(None)))}
