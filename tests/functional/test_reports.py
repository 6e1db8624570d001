"""Reports through the HTTP contract: pipeline summary, weighted forecast, win rate and sales cycle,
activity counts — exact amounts, ranges, validation and tenancy. Data is written through the deals,
pipelines and activities APIs; only dates in the past are set on the rows directly (no API backdates)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from functions.deals.models import Deal
from layers.db.uow import UnitOfWork
from shared.context import system_scope
from tests.support.api import Api, Reply

STAGES = [
    {"name": "Lead", "probability": "0.1"},
    {"name": "Proposal", "probability": "0.5"},
    {"name": "Empty", "probability": "0.8"},
    {"name": "Won", "probability": "1", "kind": "won"},
    {"name": "Lost", "probability": "0", "kind": "lost"},
]


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.raw
    return reply.json


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    return reply.json  # type: ignore[no-any-return]


def pipeline(api: Api, name: str = "Sales") -> tuple[str, dict[str, str]]:
    """A pipeline with the stages above: (its id, stage name → stage id)."""
    created = ok(api.post("/v1/pipelines", {"name": name, "stages": STAGES}), 201)
    return created["id"], {s["name"]: s["id"] for s in created["stages"]}


def deal(api: Api, pipeline_id: str, stage_id: str, amount: str | None = None, currency: str | None = None,
         **fields: Any) -> str:
    body = {"name": "Deal", "pipeline_id": pipeline_id, "stage_id": stage_id, **fields}
    if amount is not None:
        body |= {"amount": amount, "currency": currency}
    if "lost" in fields.get("name", "").lower():
        body["lost_reason"] = "price"
    return str(ok(api.post("/v1/deals", body), 201)["id"])


def backdate(api: Api, deal_id: str, *, created_days_ago: float, closed_days_ago: float) -> None:
    now = datetime.now(UTC)
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(Deal).where(Deal.id == deal_id).values(
            created_at=now - timedelta(days=created_days_ago), closed_at=now - timedelta(days=closed_days_ago)))
        uow.commit()


# ---- pipeline summary ---------------------------------------------------------------------------------
def test_pipeline_summary_counts_and_sums_every_stage_per_currency(api: Api) -> None:
    # GIVEN deals in EUR, USD and JPY across the stages (one without an amount, one archived, none in "Empty")
    pipeline_id, stage = pipeline(api)
    deal(api, pipeline_id, stage["Lead"], "100.10", "EUR")
    deal(api, pipeline_id, stage["Lead"], "0.05", "EUR")
    deal(api, pipeline_id, stage["Lead"], "1000", "USD")
    deal(api, pipeline_id, stage["Proposal"])
    deal(api, pipeline_id, stage["Won"], "50", "EUR")
    deal(api, pipeline_id, stage["Lost"], "1000", "JPY", name="Lost one")
    archived = deal(api, pipeline_id, stage["Lead"], "999", "EUR")
    assert api.delete(f"/v1/deals/{archived}").status == 204

    # WHEN the summary is asked for
    summary = ok(api.get(f"/v1/reports/pipeline-summary?pipeline_id={pipeline_id}"))

    # THEN every stage appears in order with its count and exact amounts per currency, empty ones too
    assert summary["pipeline_id"] == pipeline_id and summary["count"] == 6
    assert [(s["name"], s["kind"], s["position"], s["probability"], s["count"]) for s in summary["stages"]] == [
        ("Lead", "open", 0, "0.1", 3), ("Proposal", "open", 1, "0.5", 1), ("Empty", "open", 2, "0.8", 0),
        ("Won", "won", 3, "1", 1), ("Lost", "lost", 4, "0", 1)]
    assert summary["stages"][0]["amounts"] == [{"currency": "EUR", "count": 2, "amount": "100.15"},
                                               {"currency": "USD", "count": 1, "amount": "1000.00"}]
    assert [s["amounts"] for s in summary["stages"][1:3]] == [[], []]
    assert summary["stages"][4]["amounts"] == [{"currency": "JPY", "count": 1, "amount": "1000"}]
    assert summary["totals"] == [{"currency": "EUR", "count": 3, "amount": "150.15"},
                                 {"currency": "JPY", "count": 1, "amount": "1000"},
                                 {"currency": "USD", "count": 1, "amount": "1000.00"}]
    assert {s["stage_id"] for s in summary["stages"]} == set(stage.values())


def test_pipeline_summary_defaults_to_the_default_pipeline(api: Api) -> None:
    # GIVEN a fresh workspace (it has a default pipeline) and a deal in it
    default = next(p for p in ok(api.get("/v1/pipelines"))["data"] if p["is_default"])
    ok(api.post("/v1/deals", {"name": "First", "amount": "10", "currency": "EUR"}), 201)
    # WHEN the summary is asked for without a pipeline
    summary = ok(api.get("/v1/reports/pipeline-summary"))
    # THEN it is the default pipeline's, with that deal
    assert summary["pipeline_id"] == default["id"]
    assert [s["stage_id"] for s in summary["stages"]] == [s["id"] for s in default["stages"]]
    assert summary["count"] == 1 and summary["totals"] == [{"currency": "EUR", "count": 1, "amount": "10.00"}]


def test_unknown_and_archived_pipelines_are_404(api: Api) -> None:
    # GIVEN an archived pipeline
    archived, _ = pipeline(api, "Old")
    assert api.delete(f"/v1/pipelines/{archived}").status == 204
    # WHEN reports name it, or an id that never existed THEN 404
    for path in (f"/v1/reports/pipeline-summary?pipeline_id={archived}",
                 "/v1/reports/pipeline-summary?pipeline_id=01JAAAAAAAAAAAAAAAAAAAAAAA",
                 f"/v1/reports/forecast?pipeline_id={archived}", f"/v1/reports/win-rate?pipeline_id={archived}"):
        assert_problem(api.get(path), 404)


# ---- forecast -----------------------------------------------------------------------------------------
def test_forecast_weights_open_deals_by_stage_probability_per_month_and_currency(api: Api) -> None:
    # GIVEN open deals closing in March and April, closed deals, an undated one and one in another pipeline
    pipeline_id, stage = pipeline(api)
    other_id, other = pipeline(api, "Partners")
    deal(api, pipeline_id, stage["Lead"], "100.10", "EUR", expected_close_date="2027-03-31")
    deal(api, pipeline_id, stage["Proposal"], "33.33", "EUR", expected_close_date="2027-03-01")
    deal(api, pipeline_id, stage["Proposal"], "1000", "USD", expected_close_date="2027-03-15")
    deal(api, pipeline_id, stage["Lead"], "7", "EUR", expected_close_date="2027-04-02")
    deal(api, pipeline_id, stage["Won"], "500", "EUR", expected_close_date="2027-03-10")
    deal(api, pipeline_id, stage["Lost"], "500", "EUR", expected_close_date="2027-03-10", name="Lost")
    deal(api, pipeline_id, stage["Lead"], "500", "EUR")
    deal(api, other_id, other["Proposal"], "10", "EUR", expected_close_date="2027-03-05")

    # WHEN the forecast is asked for, for the pipeline, for every pipeline, and for April only
    one = ok(api.get(f"/v1/reports/forecast?pipeline_id={pipeline_id}"))
    every = ok(api.get("/v1/reports/forecast"))
    april = ok(api.get(f"/v1/reports/forecast?pipeline_id={pipeline_id}&from=2027-04-01&to=2027-04-30"))

    # THEN each month and currency sums the open deals, weighted exactly by their stage's probability
    rows = [(m["month"], m["currency"], m["count"], m["amount"], m["weighted_amount"]) for m in one["months"]]
    assert rows == [("2027-03", "EUR", 2, "133.43", "26.675"), ("2027-03", "USD", 1, "1000.00", "500.00"),
                    ("2027-04", "EUR", 1, "7.00", "0.70")]
    assert one["pipeline_id"] == pipeline_id and one["from"] is None and one["to"] is None
    assert every["months"][0] == {"month": "2027-03", "currency": "EUR", "count": 3, "amount": "143.43",
                                  "weighted_amount": "31.675"}
    assert april["from"] == "2027-04-01" and april["to"] == "2027-04-30"
    assert [(m["month"], m["amount"]) for m in april["months"]] == [("2027-04", "7.00")]


# ---- win rate -----------------------------------------------------------------------------------------
def test_win_rate_and_average_sales_cycle_over_the_closing_dates_in_range(api: Api) -> None:
    # GIVEN two deals won 10 and 20 days after creation, one lost, and deals closed outside the range or open
    pipeline_id, stage = pipeline(api)
    won_fast = deal(api, pipeline_id, stage["Won"], "100", "EUR")
    won_slow = deal(api, pipeline_id, stage["Won"], "50.50", "EUR")
    lost = deal(api, pipeline_id, stage["Lost"], "70", "EUR", name="Lost")
    old_win = deal(api, pipeline_id, stage["Won"], "999", "EUR")
    deal(api, pipeline_id, stage["Lead"], "5", "EUR")
    backdate(api, won_fast, created_days_ago=15, closed_days_ago=5)
    backdate(api, won_slow, created_days_ago=26, closed_days_ago=6)
    backdate(api, lost, created_days_ago=9, closed_days_ago=7)
    backdate(api, old_win, created_days_ago=300, closed_days_ago=200)
    today = datetime.now(UTC).date()
    window = f"from={today - timedelta(days=30)}&to={today}"

    # WHEN the win rate is asked for over the last 30 days, by default (90 days), and for a range with no closings
    rate = ok(api.get(f"/v1/reports/win-rate?{window}"))
    default = ok(api.get("/v1/reports/win-rate"))
    empty = ok(api.get("/v1/reports/win-rate?from=2001-01-01&to=2001-12-31"))

    # THEN it counts what closed in range: 2 won of 3, after 15 days on average, with the won amounts
    assert (rate["won"], rate["lost"], rate["win_rate"], rate["average_sales_cycle_days"]) == (2, 1, "0.6667", "15.00")
    assert rate["won_amounts"] == [{"currency": "EUR", "count": 2, "amount": "150.50"}]
    assert rate["from"] == str(today - timedelta(days=30)) and rate["to"] == str(today)
    assert (default["won"], default["lost"]) == (2, 1) and default["to"] == str(today)
    assert default["from"] == str(today - timedelta(days=89))
    assert (empty["won"], empty["lost"], empty["win_rate"], empty["average_sales_cycle_days"]) == (0, 0, None, None)
    assert empty["won_amounts"] == []


# ---- activities ---------------------------------------------------------------------------------------
def test_activity_counts_per_owner_and_kind_in_range(api: Api) -> None:
    # GIVEN notes and a call by the owner, a task for a second member, an archived note and an old call
    second = ok(api.post("/v1/members", {"email": "second@example.com", "role": "member"}), 201)["user_id"]
    owner = api.owner_user_id
    for _ in range(2):
        ok(api.post("/v1/activities", {"kind": "note", "body": "hello", "owner_id": owner}), 201)
    now = datetime.now(UTC)
    ok(api.post("/v1/activities", {"kind": "call", "owner_id": owner, "starts_at": now.isoformat()}), 201)
    ok(api.post("/v1/activities", {"kind": "task", "subject": "Follow up", "owner_id": second,
                                   "due_at": (now - timedelta(hours=1)).isoformat()}), 201)
    archived = ok(api.post("/v1/activities", {"kind": "note", "body": "gone", "owner_id": owner}), 201)["id"]
    assert api.delete(f"/v1/activities/{archived}").status == 204
    ok(api.post("/v1/activities", {"kind": "call", "owner_id": owner,
                                   "starts_at": (now - timedelta(days=400)).isoformat()}), 201)

    # WHEN the activity report is asked for (default range: the last 90 days)
    report = ok(api.get("/v1/reports/activities"))

    # THEN it counts the live activities in range, per owner and kind
    expected = sorted([(owner, "call", 1), (owner, "note", 2), (second, "task", 1)])
    assert [(r["owner_id"], r["kind"], r["count"]) for r in report["data"]] == expected
    assert report["total"] == 4


# ---- validation and tenancy ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/v1/reports/pipeline-summary?colour=red",
    "/v1/reports/pipeline-summary?pipeline_id=" + "x" * 27,
    "/v1/reports/forecast?from=2027-02-30",
    "/v1/reports/forecast?from=2027-03-01&to=2027-02-01",
    "/v1/reports/win-rate?to=yesterday",
    "/v1/reports/win-rate?from_=2027-01-01",
    "/v1/reports/activities?from=2027-03-01&to=2027-02-01",
    "/v1/reports/activities?limit=5",
])
def test_bad_report_queries_are_422(api: Api, path: str) -> None:
    # GIVEN a query with an unknown parameter, a bad date or a reversed range WHEN asked THEN 422
    assert_problem(api.get(path), 422)


def test_another_workspace_sees_none_of_the_numbers(api: Api, other_api: Api) -> None:
    # GIVEN a pipeline with a deal and an activity in workspace A
    pipeline_id, stage = pipeline(api)
    deal(api, pipeline_id, stage["Proposal"], "100", "EUR", expected_close_date="2027-03-01")
    deal(api, pipeline_id, stage["Won"], "100", "EUR")
    ok(api.post("/v1/activities", {"kind": "note", "body": "hello"}), 201)
    # WHEN workspace B asks for A's pipeline, and for its own reports
    assert_problem(other_api.get(f"/v1/reports/pipeline-summary?pipeline_id={pipeline_id}"), 404)
    own = ok(other_api.get("/v1/reports/pipeline-summary"))
    forecast = ok(other_api.get("/v1/reports/forecast"))
    rate = ok(other_api.get("/v1/reports/win-rate"))
    activities = ok(other_api.get("/v1/reports/activities"))
    # THEN none of A's records is counted
    assert own["count"] == 0 and forecast["months"] == [] and (rate["won"], rate["lost"]) == (0, 0)
    assert activities["data"] == [] and activities["total"] == 0
