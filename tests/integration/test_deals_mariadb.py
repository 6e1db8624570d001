"""Deals and pipelines on MariaDB: exact board aggregates, concurrent stage moves, stage removal, tenancy.

Concurrent requests go through the real WSGI entry from threads released together by a Barrier; each
race repeats a few times, because a race that is lost only sometimes must still never lose a row.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from functions.deals.models import Deal, DealStageChange
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from shared.context import system_scope
from tests.integration.wsgi_client import call
from tests.support.api import Api, Reply

ROUNDS = 3


def _together(count: int, action: Callable[[int], Reply]) -> list[Reply]:
    barrier = threading.Barrier(count)

    def run(i: int) -> Reply:
        barrier.wait(timeout=10)
        return action(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _ok(reply: Reply, status: int = 200) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    return reply.json  # type: ignore[no-any-return]


def _sales(api: Api) -> dict[str, Any]:
    return next(p for p in _ok(api.get("/v1/pipelines"))["data"] if p["is_default"])  # type: ignore[no-any-return]


def _stage_changes(api: Api, deal_id: str) -> list[tuple[str | None, str]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(DealStageChange).where(DealStageChange.deal_id == deal_id)
                                   .order_by(DealStageChange.id))
        return [(row.from_stage_id, row.to_stage_id) for row in rows]


def _stage_events(api: Api, deal_id: str) -> int:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return len(list(uow.session.scalars(select(OutboxEvent.id).where(
            OutboxEvent.event_type == "deal.stage_changed", OutboxEvent.record_id == deal_id))))


def test_the_board_sums_exactly_per_stage_and_currency_in_the_database(api: Api) -> None:
    # GIVEN deals whose float sums would drift: 0.1 + 0.2 USD, the column's full precision in CLF
    pipeline = _sales(api)
    first, second = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    for amount, currency, stage in (("0.10", "USD", first), ("0.20", "USD", first), ("1250", "JPY", first),
                                    ("12345678901234.5678", "CLF", second), ("99999999999999.9999", "CLF", second),
                                    ("0.0001", "CLF", second)):
        _ok(api.post("/v1/deals", {"name": "D", "amount": amount, "currency": currency, "stage_id": stage}), 201)
    archived = _ok(api.post("/v1/deals", {"name": "Gone", "amount": "5", "currency": "USD"}), 201)
    assert api.delete(f"/v1/deals/{archived['id']}").status == 204

    # WHEN the board is read
    board = _ok(api.get(f"/v1/pipelines/{pipeline['id']}/board?limit=2"))

    # THEN counts and totals are exact decimal strings, archived deals left out
    by_stage = {s["id"]: s for s in board["stages"]}
    assert (by_stage[first]["count"], by_stage[first]["amounts"]) == (
        3, [{"currency": "JPY", "total": "1250"}, {"currency": "USD", "total": "0.30"}])
    assert (by_stage[second]["count"], by_stage[second]["amounts"]) == (
        3, [{"currency": "CLF", "total": "112345678901234.5678"}])
    # AND each column's first page holds two deals, with a cursor to the third
    column = by_stage[first]["deals"]
    assert len(column["data"]) == 2 and column["next_cursor"]
    rest = _ok(api.get(f"/v1/pipelines/{pipeline['id']}/board/stages/{first}?cursor={column['next_cursor']}"))
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None
    # AND amounts read back exactly
    found = _ok(api.post("/v1/deals/search", {"filter_groups": [{"filters": [
        {"property": "currency", "operator": "EQ", "value": "CLF"}]}], "sorts": [{"property": "amount"}]}))
    assert [d["amount"] for d in found["data"]] == ["0.0001", "12345678901234.5678", "99999999999999.9999"]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_stage_moves_of_one_deal_never_lose_a_stage_change(api: Api, round_: int) -> None:
    # GIVEN a deal in the first stage and four other open stages
    pipeline = _sales(api)
    stages = [s["id"] for s in pipeline["stages"]]
    deal = _ok(api.post("/v1/deals", {"name": f"Race {round_}"}), 201)

    # WHEN four requests move it to four different stages at the same instant (moves and PATCHes mixed)
    def move(i: int) -> Reply:
        if i % 2:
            return call(api, "PATCH", f"/v1/deals/{deal['id']}", {"stage_id": stages[i + 1]})
        return call(api, "POST", f"/v1/deals/{deal['id']}/stage", {"stage_id": stages[i + 1]})

    replies = _together(4, move)

    # THEN every move succeeds (writes to one deal take turns), each is one stage change and one event,
    # and the changes chain: each starts where the previous one ended, the last is where the deal is
    assert [r.status for r in replies] == [200, 200, 200, 200], [r.json for r in replies]
    changes = _stage_changes(api, deal["id"])
    assert len(changes) == 5 and _stage_events(api, deal["id"]) == 5
    assert changes[0] == (None, stages[0])
    for before, after in itertools.pairwise(changes):
        assert after[0] == before[1]
    final = _ok(api.get(f"/v1/deals/{deal['id']}"))
    assert final["stage_id"] == changes[-1][1] and final["stage_id"] in stages[1:5]
    assert sorted(c[1] for c in changes[1:]) == sorted(stages[1:5])
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        assert uow.session.get(Deal, deal["id"]).version == 5  # type: ignore[union-attr]


def test_a_refused_move_and_a_refused_stage_removal_leave_nothing_behind(api: Api) -> None:
    # GIVEN a deal in an open stage
    pipeline = _sales(api)
    first, lost = pipeline["stages"][0]["id"], pipeline["stages"][-1]["id"]
    deal = _ok(api.post("/v1/deals", {"name": "Stays", "amount": "10.00", "currency": "EUR"}), 201)

    # WHEN it is moved to the lost stage without a reason, and its stage removed towards the lost stage
    refused = [api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": lost}),
               api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{first}?move_deals_to={lost}"),
               api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{first}")]

    # THEN all are refused and the deal, its stage changes, events and the pipeline are as they were
    assert [r.status for r in refused] == [422, 422, 409]
    assert _ok(api.get(f"/v1/deals/{deal['id']}")) == deal
    assert _stage_changes(api, deal["id"]) == [(None, first)] and _stage_events(api, deal["id"]) == 1
    assert _ok(api.get(f"/v1/pipelines/{pipeline['id']}")) == pipeline


def test_removing_a_stage_moves_its_deals_in_one_transaction(api: Api) -> None:
    # GIVEN three deals in the second stage (one archived)
    pipeline = _sales(api)
    first, second = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    ids = [_ok(api.post("/v1/deals", {"name": f"D{i}", "stage_id": second}), 201)["id"] for i in range(3)]
    assert api.delete(f"/v1/deals/{ids[2]}").status == 204

    # WHEN the stage is removed, moving its deals to the first one
    reply = _ok(api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{second}?move_deals_to={first}"))

    # THEN the stage is gone and every deal moved, each move recorded
    assert second not in [s["id"] for s in reply["stages"]]
    for deal_id in ids:
        assert _stage_changes(api, deal_id) == [(None, second), (second, first)]
    assert _ok(api.get(f"/v1/pipelines/{pipeline['id']}/board"))["stages"][0]["count"] == 2


def test_another_workspace_cannot_see_or_move_deals_on_mariadb(api: Api, other_api: Api) -> None:
    # GIVEN a deal and the board of workspace A
    pipeline = _sales(api)
    deal = _ok(api.post("/v1/deals", {"name": "Secret", "amount": "99.00", "currency": "USD"}), 201)

    # WHEN workspace B reads, searches and moves it
    replies = [other_api.get(f"/v1/deals/{deal['id']}"),
               other_api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline["stages"][1]["id"]}),
               other_api.get(f"/v1/deals/{deal['id']}/stage-changes"),
               other_api.get(f"/v1/pipelines/{pipeline['id']}/board")]
    found = _ok(other_api.post("/v1/deals/search", {"query": "Secret"}))

    # THEN nothing of A's is visible or changed
    assert [r.status for r in replies] == [404, 404, 404, 404]
    assert found["data"] == []
    own = _ok(other_api.get(f"/v1/pipelines/{_sales(other_api)['id']}/board"))
    assert all(s["count"] == 0 and s["amounts"] == [] for s in own["stages"])
    assert _ok(api.get(f"/v1/deals/{deal['id']}")) == deal


def test_deals_filter_and_page_by_expected_close_date(api: Api) -> None:
    # GIVEN deals closing on three dates, and one without a date
    dates = ["2026-05-31", "2026-06-01", "2026-07-15"]
    ids = {d: _ok(api.post("/v1/deals", {"name": "D", "expected_close_date": d}), 201)["id"] for d in dates}
    _ok(api.post("/v1/deals", {"name": "Undated"}), 201)

    # WHEN searched for those closing from June on, latest first, one per page
    request: dict[str, Any] = {"filter_groups": [{"filters": [
        {"property": "expected_close_date", "operator": "GTE", "value": "2026-06-01"}]}],
        "sorts": [{"property": "expected_close_date", "direction": "desc"}], "limit": 1}
    seen, cursor = [], None
    while True:
        page = _ok(api.post("/v1/deals/search", {**request, **({"cursor": cursor} if cursor else {})}))
        seen += [(d["id"], d["expected_close_date"]) for d in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # THEN exactly the June and July deals come, in date order, each once
    assert seen == [(ids["2026-07-15"], "2026-07-15"), (ids["2026-06-01"], "2026-06-01")]
