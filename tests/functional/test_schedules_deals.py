"""Stale deals (functions/deals/schedules.py): `deal.stale` once per staleness period, per workspace setting."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from functions.deals.models import Deal
from functions.deals.service import flag_stale_deals
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent, event_body
from layers.runtime.inline import InlineQueue
from shared.clock import isoformat, utcnow
from shared.context import system_scope
from tests.support.api import Api


def _deal(api: Api, name: str = "Deal") -> dict[str, Any]:
    reply = api.post("/v1/deals", {"name": name})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def _quiet_since(api: Api, deal_id: str, days: float) -> datetime:
    """Test helper: the deal entered its stage `days` ago (set in the database, as time would have)."""
    moment = utcnow() - timedelta(days=days)
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(Deal).where(Deal.id == deal_id).values(stage_entered_at=moment)
                            .execution_options(synchronize_session=False))
        uow.commit()
    return moment


def _last_activity(api: Api, deal_id: str, days_ago: float) -> None:
    """Test helper: the deal's last activity was `days_ago` (time passing, without waiting for it)."""
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(Deal).where(Deal.id == deal_id)
                            .values(last_activity_at=utcnow() - timedelta(days=days_ago))
                            .execution_options(synchronize_session=False))
        uow.commit()


def _stale_events(api: Api) -> list[dict[str, Any]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.stale")
                                   .order_by(OutboxEvent.occurred_at, OutboxEvent.id))
        return [event_body(row) for row in rows]


def _log_call(api: Api, deal_id: str, days_ago: float) -> None:
    reply = api.post("/v1/activities", {"kind": "call", "starts_at": isoformat(utcnow() - timedelta(days=days_ago)),
                                        "links": {"deals": [deal_id]}})
    assert reply.status == 201, reply.raw


def test_a_quiet_open_deal_is_flagged_once(api: Api, jobs: InlineQueue) -> None:
    # GIVEN (with the default of 14 days) a deal quiet for 20 days, a fresh one, a won one quiet for 20
    # days and an archived one
    quiet, fresh, won, archived = (_deal(api, name) for name in ("Quiet", "Fresh", "Won", "Archived"))
    entered = _quiet_since(api, quiet["id"], 20)
    pipeline = next(p for p in api.get("/v1/pipelines").json["data"] if p["id"] == won["pipeline_id"])
    won_stage = next(s for s in pipeline["stages"] if s["kind"] == "won")
    assert api.post(f"/v1/deals/{won['id']}/stage", {"stage_id": won_stage["id"]}).status == 200
    assert api.delete(f"/v1/deals/{archived['id']}").status in (200, 204)
    for deal in (won, archived):
        _quiet_since(api, deal["id"], 20)

    # WHEN the hourly schedule runs twice
    for _ in range(2):
        jobs.send(json.dumps({"handler": "deals_flag_stale"}))
        jobs.run()

    # THEN only the quiet open deal is flagged, once, with when it went stale
    (event,) = _stale_events(api)
    assert event["record_id"] == quiet["id"] and event["object_type"] == "deals"
    assert event["data"] == {"id": quiet["id"], "name": "Quiet", "owner_id": None, "pipeline_id": quiet["pipeline_id"],
                             "stage_id": quiet["stage_id"], "last_activity_at": None,
                             "stale_since": isoformat(entered + timedelta(days=14)), "stale_deal_days": 14}
    assert fresh["id"] != event["record_id"]


def test_activity_after_the_notice_starts_a_new_period(api: Api) -> None:
    # GIVEN a deal flagged stale after 20 quiet days
    deal = _deal(api)
    _quiet_since(api, deal["id"], 20)
    flag_stale_deals(now=utcnow())

    # WHEN a call from yesterday is logged (fresh again), then 15 days pass without another
    _log_call(api, deal["id"], days_ago=1)
    flag_stale_deals(now=utcnow())
    fresh_count = len(_stale_events(api))
    _last_activity(api, deal["id"], days_ago=15)
    flag_stale_deals(now=utcnow())

    # THEN it is not stale right after the call, and is flagged again once quiet for 14 days after it
    assert fresh_count == 1
    events = _stale_events(api)
    assert len(events) == 2 and events[1]["data"]["last_activity_at"] is not None


def test_a_call_logged_late_still_starts_a_new_period(api: Api) -> None:
    # GIVEN a deal flagged stale after 30 quiet days
    deal = _deal(api)
    _quiet_since(api, deal["id"], 30)
    flag_stale_deals(now=utcnow())

    # WHEN a call that happened 16 days ago (before the notice) is logged now, and the sweep runs twice
    _log_call(api, deal["id"], days_ago=16)
    flag_stale_deals(now=utcnow())
    flag_stale_deals(now=utcnow())

    # THEN the deal, still quiet for longer than 14 days since that call, is flagged for the new period once
    assert len(_stale_events(api)) == 2


@pytest.mark.parametrize(("days", "quiet_for", "flagged"), [
    pytest.param(30, 20, False, id="30-days-not-reached"),
    pytest.param(30, 31, True, id="30-days-reached"),
    pytest.param(0, 400, False, id="0-turns-it-off"),
    pytest.param(1, 2, True, id="1-day"),
])
def test_the_threshold_is_the_workspaces_own(api: Api, other_api: Api, days: int, quiet_for: int,
                                             flagged: bool) -> None:
    # GIVEN a workspace whose admin set stale_deal_days, and a deal quiet for some days in it and in
    # another workspace (default 14)
    changed = api.patch("/v1/workspace", {"stale_deal_days": days})
    deal, other = _deal(api), _deal(other_api)
    _quiet_since(api, deal["id"], quiet_for)
    _quiet_since(other_api, other["id"], quiet_for)

    # WHEN the sweep runs
    flag_stale_deals(now=utcnow())

    # THEN the setting reads back, and decides for its own workspace only
    assert changed.status == 200 and changed.json["stale_deal_days"] == days
    assert api.get("/v1/workspace").json["stale_deal_days"] == days
    assert [e["record_id"] for e in _stale_events(api)] == ([deal["id"]] if flagged else [])
    assert [e["record_id"] for e in _stale_events(other_api)] == ([other["id"]] if quiet_for > 14 else [])


def test_the_setting_starts_at_14_days(api: Api) -> None:
    # GIVEN a fresh workspace
    # WHEN its settings are read
    reply = api.get("/v1/workspace")
    # THEN stale deals are flagged after 14 days
    assert reply.status == 200 and reply.json["stale_deal_days"] == 14


@pytest.mark.parametrize("value", [-1, "14", 1.5, None, 3651, True])
def test_a_bad_threshold_is_refused(api: Api, value: Any) -> None:
    # GIVEN a workspace
    # WHEN an admin sends a threshold that is not a whole number of days from 0 to 3650
    reply = api.patch("/v1/workspace", {"stale_deal_days": value})
    # THEN it is a 422 naming the field, and the setting is unchanged
    assert reply.status == 422, reply.raw
    assert any(e["field"] == "stale_deal_days" for e in reply.json["errors"]) or value is None
    assert api.get("/v1/workspace").json["stale_deal_days"] == 14
