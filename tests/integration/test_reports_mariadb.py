"""Reports on MariaDB over a bulk-loaded pipeline: the numbers match what was inserted (computed here in
Python with exact decimals) and a plain SQL GROUP BY, they respect workspaces and record-level
visibility, and they stay fast.

The deals are inserted with Core executemany in chunks (no API: that would take minutes), as
`REPORT_DEALS` rows — 20,000 by default so the suite stays quick; the 100,000-deal figure comes from
`python bench/reports.py` (same data shape) and `REPORT_DEALS=100000 pytest tests/integration/test_reports_mariadb.py`.
"""
from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, insert, text

from functions.activities.models import Activity
from functions.deals.models import Deal
from layers.cache.client import use_redis
from layers.db.engine import use_engine
from shared.ids import new_id
from tests.support.api import Api, provision
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite

DEALS = int(os.environ.get("REPORT_DEALS", "20000"))
ACTIVITIES = max(DEALS // 10, 1000)
CHUNK = 5000
CURRENCIES = ("EUR", "USD", "JPY")
PLACES = {"EUR": 2, "USD": 2, "JPY": 0}
TODAY = datetime.now(UTC).date()


@dataclass
class Loaded:
    """What was inserted, kept here to compute the expected numbers independently of the reports."""

    pipeline_id: str
    stages: list[dict[str, Any]]
    owners: list[str]
    deals: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)


def money(amount: Decimal, currency: str) -> str:
    return format(amount.quantize(Decimal(1).scaleb(-PLACES[currency])), "f")


def make_deals(rng: random.Random, workspace_id: str, pipeline_id: str, stages: list[dict[str, Any]],
               owners: list[str], count: int) -> Iterator[dict[str, Any]]:
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(count):
        stage = rng.choice(stages)
        currency = rng.choice(CURRENCIES)
        valued = rng.random() < 0.9
        amount = Decimal(rng.randint(1, 5_000_000)).scaleb(-PLACES[currency]) if valued else None
        created = now - timedelta(days=rng.randint(20, 400), seconds=rng.randint(0, 86399))
        closed = None
        if stage["kind"] != "open":
            closed = min(created + timedelta(days=rng.randint(0, 120), seconds=rng.randint(0, 86399)), now)
        yield {
            "id": new_id(), "workspace_id": workspace_id, "created_at": created, "updated_at": created,
            "archived_at": now if i % 50 == 0 else None, "version": 1, "owner_id": rng.choice(owners),
            "name": f"Deal {i}", "amount": amount, "currency": currency if valued else None,
            "pipeline_id": pipeline_id, "stage_id": stage["id"],
            "expected_close_date": TODAY + timedelta(days=rng.randint(-60, 300)) if rng.random() < 0.8 else None,
            "closed_at": closed, "lost_reason": "price" if stage["kind"] == "lost" else None, "company_id": None,
            "tags": [], "custom": {}, "stage_entered_at": created, "last_activity_at": None,
        }


def bulk_insert(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(insert(table), rows[start:start + CHUNK])


@pytest.fixture(scope="module")
def loaded_stack(mariadb_engine: Engine, real_redis: redis.Redis, firebase_issuer: FirebaseTestIssuer
                 ) -> Iterator[tuple[Api, Loaded]]:
    """One bulk load for the module (it is the slow part): its own workspace, on MariaDB and Redis."""
    use_engine(mariadb_engine)
    use_redis(real_redis)
    try:
        api, other_api = provision(), provision(name="Other")
        data = load(api, other_api, firebase_issuer, mariadb_engine)
    finally:
        use_redis(None)
        use_engine(None)
    yield api, data


@pytest.fixture
def api(loaded_stack: tuple[Api, Loaded]) -> Api:
    """The bulk-loaded workspace's admin key (it shadows the fresh workspace of the root conftest)."""
    return loaded_stack[0]


@pytest.fixture
def loaded(loaded_stack: tuple[Api, Loaded]) -> Loaded:
    return loaded_stack[1]


def load(api: Api, other_api: Api, firebase_issuer: FirebaseTestIssuer, mariadb_engine: Engine) -> Loaded:
    rng = random.Random(20260301)
    people = [invite(api, firebase_issuer, "member") for _ in range(3)]
    owners = [api.owner_user_id] + [p.owner_user_id for p in people]
    created = api.post("/v1/pipelines", {"name": "Bulk", "stages": [
        {"name": "New", "probability": "0.05"}, {"name": "Qualified", "probability": "0.2"},
        {"name": "Proposal", "probability": "0.3333"}, {"name": "Negotiation", "probability": "0.75"},
        {"name": "Won", "probability": "1", "kind": "won"}, {"name": "Lost", "probability": "0", "kind": "lost"},
        {"name": "Never used", "probability": "0.9"}]})
    assert created.status == 201, created.raw
    stages = created.json["stages"]
    data = Loaded(created.json["id"], stages, owners)
    started = time.perf_counter()
    data.deals = list(make_deals(rng, api.workspace_id, data.pipeline_id, stages[:6], owners, DEALS))
    bulk_insert(mariadb_engine, Deal.__table__, data.deals)
    # Noise the reports must not count: another workspace's deals in a pipeline of its own.
    theirs = other_api.post("/v1/pipelines", {"name": "Theirs", "stages": [
        {"name": "Open", "probability": "0.5"}, {"name": "Won", "probability": "1", "kind": "won"}]})
    assert theirs.status == 201, theirs.raw
    bulk_insert(mariadb_engine, Deal.__table__, list(make_deals(
        rng, other_api.workspace_id, theirs.json["id"], theirs.json["stages"], [other_api.owner_user_id], 1000)))
    now = datetime.now(UTC).replace(microsecond=0)
    data.activities = [{
        "id": new_id(), "workspace_id": api.workspace_id, "created_at": now, "updated_at": now,
        "archived_at": now if i % 40 == 0 else None, "version": 1, "owner_id": rng.choice(owners),
        "kind": rng.choice(("note", "task", "call", "meeting", "email")), "subject": "s", "body": None,
        "occurred_at": now - timedelta(days=rng.randint(0, 200), seconds=rng.randint(0, 86399)), "email_to": [],
    } for i in range(ACTIVITIES)]
    bulk_insert(mariadb_engine, Activity.__table__, data.activities)
    elapsed = time.perf_counter() - started
    print(f"\ninserted {DEALS} deals and {ACTIVITIES} activities in {elapsed:.1f} s")
    assert elapsed < 20 * max(DEALS / 100_000, 1), "bulk insert is too slow to keep in the suite"
    return data


def expected_summary(data: Loaded, visible: set[str] | None = None) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    valued: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for deal in data.deals:
        if deal["archived_at"] is not None or (visible is not None and deal["owner_id"] not in visible):
            continue
        counts[deal["stage_id"]] += 1
        if deal["amount"] is not None:
            valued[(deal["stage_id"], deal["currency"])].append(deal["amount"])
    stages = []
    for stage in data.stages:
        amounts = [{"currency": c, "count": len(valued[(stage["id"], c)]),
                    "amount": money(sum(valued[(stage["id"], c)], Decimal(0)), c)}
                   for c in sorted(CURRENCIES) if valued[(stage["id"], c)]]
        stages.append((stage["id"], counts[stage["id"]], amounts))
    return {"count": sum(counts.values()), "stages": stages}


def timed(api: Api, path: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    reply = api.get(path)
    elapsed = time.perf_counter() - started
    assert reply.status == 200, reply.raw
    return reply.json, elapsed


def test_pipeline_summary_matches_the_inserted_deals_and_sql(api: Api, loaded: Loaded, mariadb_engine: Engine) -> None:
    # GIVEN the bulk-loaded pipeline
    # WHEN its summary is asked for
    summary, elapsed = timed(api, f"/v1/reports/pipeline-summary?pipeline_id={loaded.pipeline_id}")
    print(f"pipeline summary over {DEALS} deals: {elapsed * 1000:.0f} ms")

    # THEN every stage's count and per-currency amounts are the ones computed from the inserted rows
    expected = expected_summary(loaded)
    assert summary["count"] == expected["count"]
    assert [(s["stage_id"], s["count"], s["amounts"]) for s in summary["stages"]] == expected["stages"]
    assert summary["stages"][-1]["count"] == 0  # "Never used" is there, empty
    # AND they agree with a plain GROUP BY on the table
    with mariadb_engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT stage_id, currency, COUNT(amount), SUM(amount) FROM deals WHERE workspace_id = :w "
            "AND pipeline_id = :p AND archived_at IS NULL AND amount IS NOT NULL GROUP BY stage_id, currency"),
            {"w": api.workspace_id, "p": loaded.pipeline_id}).all()
    by_sql = {(stage, currency): (count, money(total, currency)) for stage, currency, count, total in rows}
    by_report = {(s["stage_id"], m["currency"]): (m["count"], m["amount"])
                 for s in summary["stages"] for m in s["amounts"]}
    assert by_report == by_sql
    assert elapsed < 2.0


def test_forecast_matches_the_inserted_open_deals(api: Api, loaded: Loaded) -> None:
    # GIVEN the bulk-loaded pipeline
    probability = {s["id"]: Decimal(s["probability"]) for s in loaded.stages if s["kind"] == "open"}
    start, end = TODAY, TODAY + timedelta(days=180)
    # WHEN the forecast for the next 180 days is asked for
    forecast, elapsed = timed(api, f"/v1/reports/forecast?pipeline_id={loaded.pipeline_id}&from={start}&to={end}")
    print(f"forecast over {DEALS} deals: {elapsed * 1000:.0f} ms")
    # THEN each month and currency is the exact sum of amount × probability of the open deals closing then
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    for deal in loaded.deals:
        close: date | None = deal["expected_close_date"]
        if (deal["archived_at"] is None and deal["stage_id"] in probability and deal["amount"] is not None
                and close is not None and start <= close <= end):
            row = sums[(close.strftime("%Y-%m"), deal["currency"])]
            row[0] += 1
            row[1] += deal["amount"]
            row[2] += deal["amount"] * probability[deal["stage_id"]]
    expected = [(month, currency, int(n), money(total, currency), weighted)
                for (month, currency), (n, total, weighted) in sorted(sums.items())]
    got = [(m["month"], m["currency"], m["count"], m["amount"], Decimal(m["weighted_amount"]))
           for m in forecast["months"]]
    assert got == expected
    assert elapsed < 2.0


def test_win_rate_and_cycle_match_the_inserted_closed_deals(api: Api, loaded: Loaded) -> None:
    # GIVEN the bulk-loaded pipeline
    kinds = {s["id"]: s["kind"] for s in loaded.stages}
    start, end = TODAY - timedelta(days=120), TODAY
    # WHEN the win rate over the last 120 days is asked for
    rate, elapsed = timed(api, f"/v1/reports/win-rate?pipeline_id={loaded.pipeline_id}&from={start}&to={end}")
    print(f"win rate over {DEALS} deals: {elapsed * 1000:.0f} ms")
    # THEN it counts the deals closed in range, and the cycle is their mean closed_at − created_at
    closed = [d for d in loaded.deals if d["archived_at"] is None and d["closed_at"] is not None
              and start <= d["closed_at"].date() <= end]
    won = [d for d in closed if kinds[d["stage_id"]] == "won"]
    lost = [d for d in closed if kinds[d["stage_id"]] == "lost"]
    seconds = sum(int((d["closed_at"] - d["created_at"]).total_seconds()) for d in won)
    assert (rate["won"], rate["lost"]) == (len(won), len(lost)) and won and lost
    assert rate["win_rate"] == str((Decimal(len(won)) / Decimal(len(won) + len(lost))).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_EVEN))
    cycle = (Decimal(seconds) / len(won) / 86400).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert abs(Decimal(rate["average_sales_cycle_days"]) - cycle) <= Decimal("0.01")  # AVG() rounds to 4 places
    assert elapsed < 2.0


def test_activity_counts_match_the_inserted_activities(api: Api, loaded: Loaded) -> None:
    # GIVEN the bulk-loaded activities
    start, end = TODAY - timedelta(days=89), TODAY
    # WHEN the default activity report is asked for
    report, elapsed = timed(api, "/v1/reports/activities")
    print(f"activities report over {ACTIVITIES} activities: {elapsed * 1000:.0f} ms")
    # THEN it counts the live ones of the last 90 days per owner and kind
    expected = Counter((a["owner_id"], a["kind"]) for a in loaded.activities
                       if a["archived_at"] is None and start <= a["occurred_at"].date() <= end)
    assert {(r["owner_id"], r["kind"]): r["count"] for r in report["data"]} == dict(expected)
    assert report["total"] == sum(expected.values())


def test_a_restricted_member_s_reports_cover_their_team_only(
    api: Api, loaded: Loaded, firebase_issuer: FirebaseTestIssuer
) -> None:
    # GIVEN restricted visibility, and a member in a team with the workspace's owner
    member = invite(api, firebase_issuer, "member")
    assert api.post("/v1/teams", {"name": "Bulk team", "member_ids": [member.owner_user_id, api.owner_user_id]}
                    ).status == 201
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200
    # WHEN the member asks for the pipeline summary and the activity report
    summary, elapsed = timed(member, f"/v1/reports/pipeline-summary?pipeline_id={loaded.pipeline_id}")
    activities, _ = timed(member, "/v1/reports/activities")
    print(f"restricted pipeline summary over {DEALS} deals: {elapsed * 1000:.0f} ms")
    # THEN only deals and activities owned by the team count
    expected = expected_summary(loaded, visible={member.owner_user_id, api.owner_user_id})
    assert summary["count"] == expected["count"] > 0
    assert [(s["stage_id"], s["count"], s["amounts"]) for s in summary["stages"]] == expected["stages"]
    assert {r["owner_id"] for r in activities["data"]} <= {api.owner_user_id}
    assert elapsed < 2.0
