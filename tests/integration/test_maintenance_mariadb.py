"""Schedules on MariaDB: the purge's deletes and locks, the stale-deal query, and sweeps racing each other.

Races run the same sweep from threads released together by a Barrier: the conditional UPDATE of each
mark must let exactly one of them send an event.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from functions.activities.service import remind_tasks
from functions.associations.models import Association
from functions.contacts.models import Contact
from functions.deals.models import Deal, DealStageChange
from functions.deals.service import flag_stale_deals
from functions.maintenance.service import purge_archived
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.records.history import FieldHistory
from shared.clock import isoformat, utcnow
from shared.context import system_scope
from tests.support.api import Api


def _together(count: int, action: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(count)

    def run(_: int) -> Any:
        barrier.wait(timeout=10)
        return action()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _created(api: Api, object_type: str, body: dict[str, Any]) -> str:
    reply = api.post(f"/v1/{object_type}", body)
    assert reply.status == 201, reply.raw
    return str(reply.json["id"])


def _set(api: Api, model: Any, record_id: str, **values: Any) -> None:
    """Test helper: move a record's timestamps back, as if time had passed."""
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(model).where(model.id == record_id).values(**values)
                            .execution_options(synchronize_session=False))
        uow.commit()


def _events(api: Api, event_type: str) -> list[str]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return list(uow.session.scalars(select(OutboxEvent.record_id).where(OutboxEvent.event_type == event_type)))


def test_the_purge_deletes_old_archived_records_with_their_links_and_keeps_history(api: Api) -> None:
    # GIVEN a live contact, and a deal linked to it archived 91 days ago; a contact archived 60 days ago
    live = _created(api, "contacts", {"email": "live@example.com"})
    recent = _created(api, "contacts", {"email": "recent@example.com"})
    old_deal = _created(api, "deals", {"name": "Old", "contact_ids": [live]})
    for object_type, record_id, days in (("deals", old_deal, 91), ("contacts", recent, 60)):
        assert api.delete(f"/v1/{object_type}/{record_id}").status in (200, 204)
        _set(api, Deal if object_type == "deals" else Contact, record_id, archived_at=utcnow() - timedelta(days=days))

    # WHEN the purge runs (small batches)
    counts = purge_archived(now=utcnow(), batch_size=1)

    # THEN the deal, its link and its stage changes are gone; its history and the other contacts stay
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        assert uow.session.get(Deal, old_deal) is None
        assert set(uow.session.scalars(select(Contact.id))) == {live, recent}
        assert list(uow.session.scalars(select(Association.id))) == []
        assert list(uow.session.scalars(select(DealStageChange.id).where(DealStageChange.deal_id == old_deal))) == []
        assert list(uow.session.scalars(select(FieldHistory.id).where(FieldHistory.record_id == old_deal)))
    assert counts["deals"] >= 1


def test_the_stale_query_flags_a_quiet_deal_once_even_when_sweeps_race(api: Api) -> None:
    # GIVEN a deal quiet for 20 days, one with a call 3 days ago, and one whose last call was 15 days ago
    quiet, called, faded = (_created(api, "deals", {"name": name}) for name in ("Quiet", "Called", "Faded"))
    for deal in (quiet, called, faded):
        _set(api, Deal, deal, stage_entered_at=utcnow() - timedelta(days=20))
    for deal, days in ((called, 3), (faded, 15)):
        call = {"kind": "call", "starts_at": isoformat(utcnow() - timedelta(days=days)), "links": {"deals": [deal]}}
        assert api.post("/v1/activities", call).status == 201

    # WHEN four sweeps run at once
    _together(4, lambda: flag_stale_deals(now=utcnow()))

    # THEN the quiet deal and the faded one are flagged, once each
    assert sorted(_events(api, "deal.stale")) == sorted([quiet, faded])


def test_racing_reminder_sweeps_send_each_reminder_once(api: Api) -> None:
    # GIVEN a task due in five minutes and one overdue by an hour
    tasks = [_created(api, "activities", {"kind": "task", "subject": f"Task {i}", "owner_id": api.owner_user_id,
                                           "due_at": isoformat(utcnow() + offset)})
             for i, offset in enumerate((timedelta(minutes=5), timedelta(hours=-1)))]

    # WHEN four sweeps run at once
    _together(4, lambda: remind_tasks(now=utcnow()))

    # THEN one `task.due` and one `task.overdue` went out
    assert _events(api, "task.due") == [tasks[0]]
    assert _events(api, "task.overdue") == [tasks[1]]
