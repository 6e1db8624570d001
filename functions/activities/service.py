"""Activity use cases: the shared record machinery with kind rules and links, record timelines, task lists.

Links to contacts, companies and deals are associations (functions/associations); an activity's
`links` reads like a field (history, events, PATCH) but lives in the associations table.
"""
from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import object_session

from functions.activities import rules
from functions.activities.models import Activity
from functions.activities.schemas import ActivityCreate, ActivityRead, ActivityUpdate
from functions.associations import service as associations
from functions.deals.activity_hooks import touch_last_activity
from functions.workspaces.service import ensure_members
from layers.db.base import RecordMixin
from layers.db.uow import UnitOfWork
from layers.http.requests import page_json
from layers.queue.outbox import emit
from layers.records.history import FieldHistory, history_entry
from layers.records.properties import PropertySpec
from layers.records.service import BatchOperation, BatchOutcome, ObjectSpec, RecordService, RecordView
from shared.clock import as_utc, isoformat, utcnow
from shared.context import Scope, system_scope
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import Forbidden, ValidationFailed
from shared.settings import get_settings

TIMELINE_TYPES = ("contacts", "companies", "deals")
_UOW_KEY = "activities.uow"  # session.info: the unit of work a search's rows were loaded in


def _check_references(uow: UnitOfWork, values: dict[str, Any]) -> None:
    if values.get("owner_id") is not None:
        ensure_members(uow, [values["owner_id"]], field="owner_id")


SPEC = ObjectSpec(
    object_type="activities",
    event_name="activity",
    model=Activity,
    read_schema=ActivityRead,
    create_schema=ActivityCreate,
    update_schema=ActivityUpdate,
    properties=(
        PropertySpec("id", "id"),
        PropertySpec("kind", "enum", choices=rules.KINDS),
        PropertySpec("subject", "string"),
        PropertySpec("owner_id", "id"),
        PropertySpec("occurred_at", "datetime"),
        PropertySpec("due_at", "datetime"),
        PropertySpec("priority", "enum", choices=rules.PRIORITIES),
        PropertySpec("completed_at", "datetime"),
        PropertySpec("starts_at", "datetime"),
        PropertySpec("duration_minutes", "number"),
        PropertySpec("outcome", "string"),
        PropertySpec("direction", "enum", choices=rules.DIRECTIONS),
        PropertySpec("email_from", "string"),
        PropertySpec("created_at", "datetime"),
        PropertySpec("updated_at", "datetime"),
        PropertySpec("archived_at", "datetime"),
    ),
    text_fields=("subject", "body"),
    check_references=_check_references,
)


class ActivityService(RecordService):
    body_shows_links = True  # links
    # ---- reads -------------------------------------------------------------------------------------
    def get(self, scope: Scope, record_id: str, *, include_archived: bool = False) -> RecordView:
        # Not from the record cache: `links` depends on other records (archived ends are hidden) and on
        # what the caller may see, so one cached body cannot serve every caller.
        with UnitOfWork(scope) as uow:
            row = self._load(uow, record_id, include_archived=include_archived)
            return self._view(row)

    def _search(self, uow: UnitOfWork, request: Any, where: tuple[ColumnElement[bool], ...]) -> str:
        uow.session.info[_UOW_KEY] = uow  # so _dump can load the page's links in one go
        return super()._search(uow, request, where)

    def _load(self, uow: UnitOfWork, record_id: str, *, include_archived: bool = True) -> RecordMixin:
        row = super()._load(uow, record_id, include_archived=include_archived)
        _fill_links(uow, [row])  # type: ignore[list-item]
        return row

    def _dump(self, row: RecordMixin) -> str:
        if row.links is None:  # type: ignore[attr-defined]
            session = object_session(row)
            assert session is not None and _UOW_KEY in session.info, "activity read outside a loading path"
            uow: UnitOfWork = session.info[_UOW_KEY]
            # Every activity this unit of work loaded: a page's links cost one query per linked type.
            _fill_links(uow, [o for o in session.identity_map.values() if isinstance(o, Activity)])
        return super()._dump(row)

    def _cache_after_commit(self, uow: UnitOfWork, view: RecordView) -> None:
        """Activities are never read from the record cache (see `get`), so none is written."""

    # ---- writes ------------------------------------------------------------------------------------
    def batch(
        self, scope: Scope, operation: BatchOperation, inputs: builtins.list[Any], *, allow_duplicate: bool = False
    ) -> BatchOutcome:
        if operation == "upsert":
            raise ValidationFailed("activities have no unique property to upsert on: use batch/create or "
                                   "batch/update", errors=[{"field": "operation", "message": "not for activities",
                                                            "code": "unsupported"}])
        return super().batch(scope, operation, inputs, allow_duplicate=allow_duplicate)

    def complete(self, scope: Scope, record_id: str, *, expected_version: int | None = None) -> RecordView:
        """Mark a task done (now); a task already done keeps its completion time."""
        with UnitOfWork(scope) as uow:
            row = self._load(uow, record_id, include_archived=False)
            rules.ensure_task(row.kind, "completed")  # type: ignore[attr-defined]
            patch = {} if row.completed_at is not None else {"completed_at": utcnow()}  # type: ignore[attr-defined]
            view = self._update(uow, record_id, patch, expected_version)
            uow.commit()
        return view

    def reopen(self, scope: Scope, record_id: str, *, expected_version: int | None = None) -> RecordView:
        with UnitOfWork(scope) as uow:
            row = self._load(uow, record_id, include_archived=False)
            rules.ensure_task(row.kind, "reopened")  # type: ignore[attr-defined]
            patch = {"completed_at": None} if row.completed_at is not None else {}  # type: ignore[attr-defined]
            view = self._update(uow, record_id, patch, expected_version)
            uow.commit()
        return view

    def _update(
        self, uow: UnitOfWork, record_id: str, values: dict[str, Any], expected_version: int | None
    ) -> RecordView:
        row: Any = self._load(uow, record_id, include_archived=False)
        patch = dict(values)
        requested_links = patch.pop("links", None)
        checked = rules.check_update(row.kind, {"created_at": row.created_at}, patch, now=utcnow())
        if requested_links is not None:
            checked["links"] = rules.merge_links(row.links or {}, rules.normalize_links(requested_links))
        return super()._update(uow, record_id, checked, expected_version)

    # ---- hooks -------------------------------------------------------------------------------------
    def _before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        scope = uow.scope
        assert scope is not None
        person = scope.actor.id if scope.actor.type == "user" else None
        checked = rules.check_create(values, now=utcnow(), default_owner_id=person)
        links = rules.compact_links(rules.normalize_links(values.get("links")))
        _check_link_targets(uow, links)
        values.clear()
        values.update(checked)
        values["links"] = links  # set on the row (not a column); linked in _after_write

    def _flush_new(self, uow: UnitOfWork, row: RecordMixin, values: dict[str, Any]) -> None:
        activity: Any = row
        if activity.occurred_at is None:  # a note or an undated task sits where it was created
            activity.occurred_at = values["occurred_at"] = row.created_at
        super()._flush_new(uow, row, values)

    def _before_update(self, uow: UnitOfWork, row: RecordMixin, changed: dict[str, Any]) -> None:
        if "due_at" in changed:  # a new due time re-arms its reminders (flushed with the change)
            row.due_reminded_at = row.overdue_notified_at = None  # type: ignore[attr-defined]
        if "links" not in changed:
            return
        added, removed = rules.link_changes(row.links or {}, changed["links"])  # type: ignore[attr-defined]
        _check_link_targets(uow, added)
        _link(uow, row.id, added)
        for other_type, ids in removed.items():
            for other_id in ids:
                associations.unlink(uow, a_type="activities", a_id=row.id, b_type=other_type, b_id=other_id)

    def _after_write(self, uow: UnitOfWork, row: RecordMixin, action: str, changed: dict[str, Any]) -> None:
        activity: Any = row
        if action == "created":
            _link(uow, row.id, activity.links or {})
        elif not (action == "updated" and {"links", "occurred_at", "completed_at"} & set(changed)):
            return
        deal_ids = (activity.links or {}).get("deals", [])
        if deal_ids:
            at = rules.activity_moment(activity.occurred_at, activity.completed_at, utcnow())
            touch_last_activity(uow, deal_ids, at)

    # ---- timelines ---------------------------------------------------------------------------------
    def timeline(
        self, scope: Scope, object_type: str, record_id: str, *, limit: int, cursor: str | None, kinds: str | None
    ) -> str:
        """The record's activities and field history, newest first, in one keyset-paged stream."""
        wanted = rules.parse_timeline_kinds(kinds)
        secret = get_settings().cursor_secret
        signature = f"{object_type}:{record_id}:{','.join(sorted(wanted))}"
        position = _decode_position(cursor, secret, signature, "another record's timeline or other kinds")
        with UnitOfWork(scope) as uow:
            associations.ensure_visible(uow, object_type, record_id)
            activities: list[tuple[datetime, str, Any]] = []
            changes: list[tuple[datetime, str, Any]] = []
            activity_kinds = sorted(wanted - {"history"})
            if activity_kinds:
                linked = associations.linked_ids_select(object_type, record_id, "activities")
                statement = (select(Activity).join(linked, Activity.id == linked.c.id)
                             .where(Activity.archived_at.is_(None))
                             .order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(limit + 1))
                if len(activity_kinds) < len(rules.KINDS):
                    statement = statement.where(Activity.kind.in_(activity_kinds))
                if position is not None:
                    statement = statement.where(_before(Activity.occurred_at, Activity.id, position))
                activities = [(row.occurred_at, row.id, row) for row in uow.session.scalars(statement)]
            if "history" in wanted:
                history = (select(FieldHistory)
                           .where(FieldHistory.object_type == object_type, FieldHistory.record_id == record_id)
                           .order_by(FieldHistory.changed_at.desc(), FieldHistory.id.desc()).limit(limit + 1))
                if position is not None:
                    history = history.where(_before(FieldHistory.changed_at, FieldHistory.id, position))
                changes = [(row.changed_at, row.id, row) for row in uow.session.scalars(history)]
            page, more = rules.merge_newest_first(activities, changes, limit)
            _fill_links(uow, [row for _, _, row in page if isinstance(row, Activity)])
            bodies = [self._timeline_entry(row) for _, _, row in page]
        next_cursor = None
        if more:
            at, last_id, _ = page[-1]
            next_cursor = encode_cursor({"s": signature, "t": as_utc(at).isoformat(), "i": last_id}, secret)
        return page_json(bodies, next_cursor)

    def _timeline_entry(self, row: Any) -> str:
        if isinstance(row, Activity):
            head = {"kind": row.kind, "id": row.id, "at": isoformat(row.occurred_at)}
            return json.dumps(head, separators=(",", ":"))[:-1] + ',"activity":' + self._dump(row) + ',"change":null}'
        entry = {"kind": "history", "id": row.id, "at": isoformat(row.changed_at), "activity": None,
                 "change": history_entry(row)}
        return json.dumps(entry, separators=(",", ":"))

    # ---- task lists --------------------------------------------------------------------------------
    def my_tasks(
        self, scope: Scope, *, status: str, owner_id: str | None, limit: int, cursor: str | None
    ) -> str:
        """The caller's tasks (an API key names whose), soonest due first, undated last."""
        if scope.actor.type == "user":
            if owner_id is not None and owner_id != scope.actor.id:
                raise ValidationFailed("`owner_id` is for API keys: your tasks are the ones assigned to you",
                                       errors=[{"field": "query.owner_id", "message": "only for API keys",
                                                "code": "not_allowed"}])
            owner_id = scope.actor.id
        elif owner_id is None:
            raise ValidationFailed("tasks are per person: an API key must name whose tasks with `owner_id`",
                                   errors=[{"field": "query.owner_id", "message": "required for API keys",
                                            "code": "missing"}])
        where = [Activity.owner_id == owner_id]
        if status == "open":
            where.append(Activity.completed_at.is_(None))
        elif status == "completed":
            where.append(Activity.completed_at.is_not(None))
        return self._task_page(scope, where, f"mine:{owner_id}:{status}", limit=limit, cursor=cursor)

    def overdue_tasks(self, scope: Scope, *, owner_id: str | None, limit: int, cursor: str | None) -> str:
        """Open tasks past due, oldest first: a person's own; everyone's for admins and API keys."""
        if scope.actor.type == "user" and not scope.can_admin:
            if owner_id is not None and owner_id != scope.actor.id:
                raise Forbidden("only admins can list other people's overdue tasks")
            owner_id = scope.actor.id
        where = [Activity.completed_at.is_(None), Activity.due_at < utcnow()]
        if owner_id is not None:
            where.append(Activity.owner_id == owner_id)
        return self._task_page(scope, where, f"overdue:{owner_id or '*'}", limit=limit, cursor=cursor)

    def _task_page(
        self, scope: Scope, where: builtins.list[ColumnElement[bool]], signature: str, *, limit: int,
        cursor: str | None,
    ) -> str:
        secret = get_settings().cursor_secret
        position = _decode_due_position(cursor, secret, signature)
        statement = (select(Activity)
                     .where(Activity.kind == "task", Activity.archived_at.is_(None), *where)
                     .order_by(Activity.due_at.is_(None), Activity.due_at, Activity.id).limit(limit + 1))
        if position is not None:
            statement = statement.where(_after_due(*position))
        with UnitOfWork(scope) as uow:
            rows: builtins.list[Any] = list(uow.session.scalars(statement))
            more = len(rows) > limit
            rows = rows[:limit]
            _fill_links(uow, rows)
            bodies = [self._dump(row) for row in rows]
        next_cursor = None
        if more:
            last = rows[-1]
            due = as_utc(last.due_at).isoformat() if last.due_at is not None else None
            next_cursor = encode_cursor({"s": signature, "d": due, "i": last.id}, secret)
        return page_json(bodies, next_cursor)


activities = ActivityService(SPEC)
associations.register_object_type("activities", activities)


# ---- reminders (functions/activities/schedules.py) ---------------------------------------------------
REMINDER_WINDOW = timedelta(minutes=15)  # `task.due` goes out this long before the due time
# A task already overdue for longer when first seen (before this feature, or after an outage) gets no
# notice: it bounds the sweep's index range and spares subscribers a flood of stale news.
OVERDUE_LOOKBACK = timedelta(days=7)
REMINDER_BATCH = 500
MAX_REMINDER_BATCHES = 20  # per reminder kind and run (10,000 tasks); the next run takes the rest


@dataclass(frozen=True)
class _Reminder:
    event_type: str
    mark: Any  # the column that records the notice went out


_DUE = _Reminder("task.due", Activity.due_reminded_at)
_OVERDUE = _Reminder("task.overdue", Activity.overdue_notified_at)


def remind_tasks(*, now: datetime, batch_size: int = REMINDER_BATCH) -> dict[str, int]:
    """Emit `task.due` for open tasks due within the reminder window and `task.overdue` for open tasks past
    due, each once per due time (a conditional UPDATE of its mark decides which run sends it)."""
    return {
        "due": _remind(_DUE, now=now, earliest=now, before=now + REMINDER_WINDOW, batch_size=batch_size),
        "overdue": _remind(_OVERDUE, now=now, earliest=now - OVERDUE_LOOKBACK, before=now, batch_size=batch_size),
    }


def _open_tasks(reminder: _Reminder, earliest: datetime, before: datetime) -> tuple[ColumnElement[bool], ...]:
    return (reminder.mark.is_(None), Activity.due_at >= earliest, Activity.due_at < before,
            Activity.kind == "task", Activity.completed_at.is_(None), Activity.archived_at.is_(None))


def _remind(reminder: _Reminder, *, now: datetime, earliest: datetime, before: datetime, batch_size: int) -> int:
    sent = 0
    for _ in range(MAX_REMINDER_BATCHES):
        # Across workspaces (ix_activities_due_reminders / _overdue_notices), then each workspace's own
        # unit of work: events belong to a workspace.
        with UnitOfWork(unscoped=True) as uow:
            found = list(uow.session.execute(
                select(Activity.workspace_id, Activity.id).where(*_open_tasks(reminder, earliest, before))
                .order_by(Activity.due_at, Activity.id).limit(batch_size)))
        by_workspace: dict[str, builtins.list[str]] = {}
        for workspace_id, task_id in found:
            by_workspace.setdefault(workspace_id, []).append(task_id)
        for workspace_id, task_ids in by_workspace.items():
            sent += _remind_in_workspace(reminder, workspace_id, task_ids, now=now, earliest=earliest, before=before)
        if len(found) < batch_size:
            break
    return sent


def _remind_in_workspace(
    reminder: _Reminder, workspace_id: str, task_ids: builtins.list[str], *, now: datetime, earliest: datetime,
    before: datetime,
) -> int:
    sent = 0
    with UnitOfWork(system_scope(workspace_id, source="worker")) as uow:
        conditions = _open_tasks(reminder, earliest, before)
        rows = list(uow.session.scalars(select(Activity).where(Activity.id.in_(task_ids), *conditions)
                                        .order_by(Activity.id)))  # one lock order for concurrent sweeps
        _fill_links(uow, rows)
        for row in rows:
            # Only the run whose UPDATE finds the mark unset (and the due time it read) sends the notice;
            # the version is left alone: a reminder does not change what the task says.
            claimed = uow.session.execute(
                update(Activity).where(Activity.id == row.id, Activity.due_at == row.due_at, *conditions)
                .values({reminder.mark: now}).execution_options(synchronize_session=False))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            emit(uow, event_type=reminder.event_type, object_type="activities", record_id=row.id, data={
                "id": row.id, "subject": row.subject, "due_at": isoformat(row.due_at) if row.due_at else None,
                "owner_id": row.owner_id, "priority": row.priority, "links": row.links or {}})
            sent += 1
        uow.commit()
    return sent


def purge_archived(uow: UnitOfWork, *, archived_before: datetime, limit: int) -> int:
    """Hard-delete up to `limit` activities archived before the cutoff (see RecordService.purge_archived)."""
    return activities.purge_archived(uow, archived_before=archived_before, limit=limit, forget=_forget_purged)


def _forget_purged(uow: UnitOfWork, ids: list[str]) -> None:
    associations.forget_records(uow, record_type="activities", record_ids=ids)


# ---- helpers ---------------------------------------------------------------------------------------
def _fill_links(uow: UnitOfWork, rows: list[Activity]) -> None:
    """Set `links` on activities that lack them: one query per linked type for all of them."""
    missing = [row for row in rows if row.links is None]
    if not missing:
        return
    ids = [row.id for row in missing]
    registered = set(associations.object_types())
    found = {other: associations.linked_ids_many(uow, "activities", ids, other)
             for other in rules.LINK_TYPES if other in registered}
    for row in missing:
        row.links = rules.compact_links({other: by_id.get(row.id, []) for other, by_id in found.items()})


def _check_link_targets(uow: UnitOfWork, links: dict[str, list[str]]) -> None:
    """422 naming every linked id that is not a live record the caller may see (in this workspace)."""
    registered = set(associations.object_types())
    errors = []
    for other_type, ids in links.items():
        if other_type not in registered:
            errors.append({"field": f"links.{other_type}", "message": f"{other_type} cannot be linked yet",
                           "code": "unsupported"})
            continue
        model = associations.model_of(other_type)
        live = set(uow.session.scalars(select(model.id).where(model.id.in_(ids), model.archived_at.is_(None))))
        errors += [{"field": f"links.{other_type}", "message": f"no {other_type} record {record_id}",
                    "code": "reference"} for record_id in ids if record_id not in live]
    if errors:
        raise ValidationFailed("links name records that do not exist here", errors=errors)


def _link(uow: UnitOfWork, activity_id: str, links: dict[str, list[str]]) -> None:
    for other_type, ids in links.items():
        for other_id in ids:
            associations.link(uow, a_type="activities", a_id=activity_id, b_type=other_type, b_id=other_id)


def _before(time_column: Any, id_column: Any, position: tuple[datetime, str]) -> ColumnElement[bool]:
    """Strictly after the cursor in newest-first (time, id) order."""
    at, last_id = position
    return or_(time_column < at, and_(time_column == at, id_column < last_id))


def _after_due(due: datetime | None, last_id: str) -> ColumnElement[bool]:
    """Strictly after the cursor in (due_at ascending, undated last, id) order."""
    if due is None:
        return and_(Activity.due_at.is_(None), Activity.id > last_id)
    return or_(Activity.due_at > due, and_(Activity.due_at == due, Activity.id > last_id), Activity.due_at.is_(None))


def _decode_position(cursor: str | None, secret: str, signature: str, what: str) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    position = decode_cursor(cursor, secret)
    if position.get("s") != signature or not isinstance(position.get("t"), str):
        raise _foreign_cursor(what)
    return as_utc(datetime.fromisoformat(position["t"])), str(position.get("i", ""))


def _decode_due_position(cursor: str | None, secret: str, signature: str) -> tuple[datetime | None, str] | None:
    if cursor is None:
        return None
    position = decode_cursor(cursor, secret)
    if position.get("s") != signature:
        raise _foreign_cursor("another task list or filter")
    due = position.get("d")
    return (as_utc(datetime.fromisoformat(due)) if isinstance(due, str) else None), str(position.get("i", ""))


def _foreign_cursor(what: str) -> ValidationFailed:
    return ValidationFailed(f"this cursor belongs to {what}", errors=[
        {"field": "cursor", "message": "cursor does not match this query", "code": "invalid"}])


