"""Automations on MariaDB: events to runs, the failure counter and auto-pause in SQL, runs paged newest
first, loops stopped, and concurrent schedule sweeps claiming a firing once."""
from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from functions.automations import service
from functions.automations.models import AutomationRule
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.runtime.inline import InlineQueue
from shared.clock import utcnow
from shared.context import system_scope
from tests.support.api import Api, Reply


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def test_failing_runs_pause_the_rule_and_page_newest_first(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule whose task needs the record's owner, and a self-triggering tag rule
    failing = created(api.post("/v1/automations", {
        "name": "Needs an owner", "object_type": "contacts", "trigger": {"type": "record_created"},
        "actions": [{"type": "create_task", "subject": "Call", "owner": "record_owner"}]}))
    looping = created(api.post("/v1/automations", {
        "name": "Tag on update", "object_type": "contacts", "trigger": {"type": "record_updated"},
        "actions": [{"type": "add_tag", "tag": "seen"}]}))

    # WHEN six contacts without an owner are created, and one is updated
    ids = [created(api.post("/v1/contacts", {"first_name": f"P{i}"}))["id"] for i in range(6)]
    jobs.run()
    assert api.patch(f"/v1/contacts/{ids[0]}", {"job_title": "CTO"}).status == 200
    jobs.run()

    # THEN the failing rule failed five times and paused itself, visible in the filtered list
    rule = api.get(f"/v1/automations/{failing['id']}").json
    assert (rule["status"], rule["consecutive_failures"]) == ("paused", 5)
    assert [r["id"] for r in api.get("/v1/automations?status=paused").json["data"]] == [failing["id"]]
    # AND its runs page newest first, filtered by status
    first = api.get(f"/v1/automations/{failing['id']}/runs?status=failed&limit=3").json
    rest = api.get(f"/v1/automations/{failing['id']}/runs?status=failed&limit=3&cursor={first['next_cursor']}").json
    run_ids = [r["id"] for r in first["data"] + rest["data"]]
    assert len(run_ids) == 5 and run_ids == sorted(run_ids, reverse=True)
    # AND the self-triggering rule ran once and was stopped once
    statuses = sorted(r["status"] for r in api.get(f"/v1/automations/{looping['id']}/runs").json["data"])
    assert statuses == ["loop_stopped", "succeeded"]
    assert jobs.dead == []


def test_concurrent_sweeps_claim_a_due_firing_once(api: Api) -> None:
    # GIVEN an hourly rule whose firing is due
    rule = created(api.post("/v1/automations", {
        "name": "Hourly", "object_type": "contacts", "trigger": {"type": "schedule", "schedule": "rate(1 hour)"},
        "actions": [{"type": "add_tag", "tag": "hourly"}]}))
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(AutomationRule).where(AutomationRule.id == rule["id"])
                            .values(next_run_at=utcnow() - timedelta(minutes=1)))
        uow.commit()

    # WHEN four sweeps run at the same moment
    start = threading.Barrier(4)

    def sweep() -> None:
        start.wait()
        service.sweep_schedules()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN exactly one firing job was sent, and the next firing is about an hour away
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        sent = uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.kind == "job", OutboxEvent.event_type == "automations_fire_schedule"))
        next_run_at = uow.session.scalar(select(AutomationRule.next_run_at).where(AutomationRule.id == rule["id"]))
    assert sent == 1
    assert next_run_at is not None and next_run_at > utcnow() + timedelta(minutes=55)
