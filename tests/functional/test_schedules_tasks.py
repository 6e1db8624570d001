"""Task reminders (functions/activities/schedules.py): `task.due` and `task.overdue`, each exactly once."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from functions.activities.service import remind_tasks
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent, event_body
from layers.runtime.inline import InlineQueue
from shared.clock import isoformat, utcnow
from shared.context import system_scope
from tests.support.api import Api

SWEEP = json.dumps({"handler": "activities_remind_tasks"})


def _task(api: Api, due_at: datetime | None, **fields: Any) -> dict[str, Any]:
    body = {"kind": "task", "subject": fields.pop("subject", "Call back"), "owner_id": api.owner_user_id, **fields}
    if due_at is not None:
        body["due_at"] = isoformat(due_at)
    reply = api.post("/v1/activities", body)
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def _events(api: Api, event_type: str) -> list[dict[str, Any]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type)
                                   .order_by(OutboxEvent.occurred_at, OutboxEvent.id))
        return [event_body(row) for row in rows]


def _sweep_twice(jobs: InlineQueue) -> None:
    for _ in range(2):  # a second run (or a concurrent one) finds nothing left to send
        jobs.send(SWEEP)
        jobs.run()


def test_due_and_overdue_tasks_are_reminded_once_each(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a task due in ten minutes, linked to a contact; one due an hour ago; one due tomorrow;
    # and tasks due soon that are done, archived or not tasks at all
    now = utcnow()
    contact = api.post("/v1/contacts", {"email": "due@example.com"}).json
    soon = _task(api, now + timedelta(minutes=10), subject="Send the quote", links={"contacts": [contact["id"]]})
    late = _task(api, now - timedelta(hours=1), subject="Chase the invoice")
    _task(api, now + timedelta(days=1))
    done = _task(api, now + timedelta(minutes=5))
    assert api.post(f"/v1/activities/{done['id']}/complete").status == 200
    archived = _task(api, now - timedelta(hours=2))
    assert api.delete(f"/v1/activities/{archived['id']}").status in (200, 204)
    api.post("/v1/activities", {"kind": "note", "body": "not a task"})

    # WHEN the reminder schedule runs twice
    _sweep_twice(jobs)

    # THEN the task due soon got one `task.due`, the late one one `task.overdue`, and nothing else did
    due, overdue = _events(api, "task.due"), _events(api, "task.overdue")
    assert [e["record_id"] for e in due] == [soon["id"]]
    assert [e["record_id"] for e in overdue] == [late["id"]]
    assert due[0]["data"] == {"id": soon["id"], "subject": "Send the quote", "due_at": soon["due_at"],
                              "owner_id": api.owner_user_id, "priority": "normal",
                              "links": {"contacts": [contact["id"]]}}
    assert due[0]["object_type"] == "activities" and due[0]["source"] == "worker"
    assert ("activities_remind_tasks", None) in jobs.done


def test_a_task_due_soon_is_overdue_once_its_time_has_passed(api: Api) -> None:
    # GIVEN a task that got its `task.due` reminder
    now = utcnow()
    task = _task(api, now + timedelta(minutes=10))
    remind_tasks(now=now)

    # WHEN the sweep runs after its due time, twice
    remind_tasks(now=now + timedelta(minutes=20))
    remind_tasks(now=now + timedelta(minutes=25))

    # THEN it got one of each
    assert [e["record_id"] for e in _events(api, "task.due")] == [task["id"]]
    assert [e["record_id"] for e in _events(api, "task.overdue")] == [task["id"]]


def test_a_new_due_time_rearms_the_reminders(api: Api) -> None:
    # GIVEN a task reminded before its due time and notified once it passed
    now = utcnow()
    task = _task(api, now - timedelta(minutes=1))
    remind_tasks(now=now)
    assert len(_events(api, "task.overdue")) == 1

    # WHEN its subject changes (no re-arm), then its due time moves to ten minutes from now
    assert api.patch(f"/v1/activities/{task['id']}", {"subject": "Renamed"}).status == 200
    remind_tasks(now=now)
    moved = api.patch(f"/v1/activities/{task['id']}", {"due_at": isoformat(now + timedelta(minutes=10))})
    remind_tasks(now=now)
    remind_tasks(now=now + timedelta(minutes=11))

    # THEN the new due time is reminded and notified again, once each
    assert moved.status == 200
    assert [e["data"]["due_at"] for e in _events(api, "task.due")] == [moved.json["due_at"]]
    assert len(_events(api, "task.overdue")) == 2


def test_a_task_completed_before_its_reminder_is_never_reminded(api: Api) -> None:
    # GIVEN a task due in ten minutes, completed now
    now = utcnow()
    task = _task(api, now + timedelta(minutes=10))
    assert api.post(f"/v1/activities/{task['id']}/complete").status == 200

    # WHEN the sweep runs before and after its due time
    remind_tasks(now=now)
    remind_tasks(now=now + timedelta(minutes=20))

    # THEN nothing was sent for it
    assert _events(api, "task.due") == [] and _events(api, "task.overdue") == []


def test_tasks_overdue_for_longer_than_the_lookback_are_not_notified(api: Api) -> None:
    # GIVEN an open task overdue for a month (before reminders existed, say)
    _task(api, utcnow() - timedelta(days=30))

    # WHEN the sweep runs
    remind_tasks(now=utcnow())

    # THEN subscribers are spared the old news
    assert _events(api, "task.overdue") == []


def test_reminders_stay_in_their_workspace(api: Api, other_api: Api) -> None:
    # GIVEN a task due soon in another workspace
    task = _task(other_api, utcnow() + timedelta(minutes=5))

    # WHEN the sweep runs
    remind_tasks(now=utcnow())

    # THEN its event belongs to that workspace only
    assert [e["record_id"] for e in _events(other_api, "task.due")] == [task["id"]]
    assert [e["workspace_id"] for e in _events(other_api, "task.due")] == [other_api.workspace_id]
    assert _events(api, "task.due") == []
