"""Reports on 100,000 deals: bulk-load a pipeline on MariaDB, then time every report.

    . .venv/bin/activate
    python bench/reports.py                    # 100,000 deals + 10,000 activities, ≈ 1 min on 2 cores
    python bench/reports.py --deals 300000 --noise 100000

Fresh database `crm_bench_reports` (`--database-url`; dropped and re-created), migrated; one workspace
with three members, a 7-stage pipeline (one stage never used), `--deals` deals inserted with Core
executemany in chunks (90 % valued, in EUR / USD / JPY, 80 % with an expected close date, 2 %
archived, owners spread over the members) and `--noise` deals in another workspace (tenancy is part
of the query plan). Each report then runs `--runs` times through the service layer (unit of work,
tenancy and visibility criteria, SQL, shaping) — as an admin, and as a member restricted to a team of
two — and the table shows p50 / p95 / max in ms. The pipeline summary is checked against a plain SQL
GROUP BY, and its query plan is printed (it should read `ix_deals_summary` only).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CRM_ENV", "test")
os.environ.setdefault("CURSOR_SECRET", "bench-reports")

CURRENCIES = ("EUR", "USD", "JPY")
PLACES = {"EUR": 2, "USD": 2, "JPY": 0}
STAGES = [{"name": "New", "probability": "0.05"}, {"name": "Qualified", "probability": "0.2"},
          {"name": "Proposal", "probability": "0.3333"}, {"name": "Negotiation", "probability": "0.75"},
          {"name": "Won", "probability": "1", "kind": "won"}, {"name": "Lost", "probability": "0", "kind": "lost"},
          {"name": "Never used", "probability": "0.9"}]


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="mysql+pymysql://root@127.0.0.1:3306/crm_bench_reports")
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument("--noise", type=int, default=20_000, help="deals in another workspace")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--chunk", type=int, default=5000)
    return parser.parse_args(argv)


def reset_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    server = create_engine(parsed.set(database="mysql"))
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS `{parsed.database}`"))
        connection.execute(text(f"CREATE DATABASE `{parsed.database}` "
                                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    server.dispose()


def deal_rows(rng: random.Random, workspace_id: str, pipeline_id: str, stages: list[Any], owners: list[str],
              count: int) -> list[dict[str, Any]]:
    from shared.ids import new_id

    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    rows = []
    for i in range(count):
        stage = rng.choice(stages)
        currency = rng.choice(CURRENCIES)
        valued = rng.random() < 0.9
        created = now - timedelta(days=rng.randint(20, 400), seconds=rng.randint(0, 86399))
        closed = None
        if stage.kind != "open":
            closed = min(created + timedelta(days=rng.randint(0, 120), seconds=rng.randint(0, 86399)), now)
        rows.append({
            "id": new_id(), "workspace_id": workspace_id, "created_at": created, "updated_at": created,
            "archived_at": now if i % 50 == 0 else None, "version": 1, "owner_id": rng.choice(owners),
            "name": f"Deal {i}", "amount": Decimal(rng.randint(1, 5_000_000)).scaleb(-PLACES[currency]) if valued
            else None, "currency": currency if valued else None, "pipeline_id": pipeline_id, "stage_id": stage.id,
            "expected_close_date": today + timedelta(days=rng.randint(-60, 300)) if rng.random() < 0.8 else None,
            "closed_at": closed, "lost_reason": "price" if stage.kind == "lost" else None, "company_id": None,
            "tags": [], "custom": {}, "stage_entered_at": created, "last_activity_at": None,
        })
    return rows


def insert_chunks(engine: Any, table: Any, rows: list[dict[str, Any]], chunk: int) -> float:
    from sqlalchemy import insert

    started = time.perf_counter()
    with engine.begin() as connection:
        for start in range(0, len(rows), chunk):
            connection.execute(insert(table), rows[start:start + chunk])
    return time.perf_counter() - started


def timings(run: Callable[[], Any], runs: int) -> list[float]:
    run()  # warm: connection pool, statement cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DATABASE_URL"] = args.database_url
    reset_database(args.database_url)

    import fakeredis
    from sqlalchemy import text

    from functions.activities.models import Activity
    from functions.deals.models import Deal
    from functions.pipelines.schemas import PipelineCreate
    from functions.pipelines.service import create_pipeline
    from functions.reports import service as reports
    from functions.reports.schemas import ActivityReportQuery, ForecastQuery, PipelineSummaryQuery, WinRateQuery
    from functions.workspaces.models import Membership, User
    from functions.workspaces.service import provision_workspace
    from layers.cache.client import use_redis
    from layers.db.engine import DatabaseLimits, get_engine, make_engine
    from layers.db.migrate import upgrade
    from layers.db.uow import UnitOfWork
    from shared.context import Actor, Scope, system_scope
    from shared.ids import new_id
    from shared.settings import get_settings

    use_redis(fakeredis.FakeRedis(decode_responses=True))
    engine = get_engine()  # the reports run with the api tier's limits, as they do behind the API ...
    settings = get_settings()  # ... the bulk load without a statement limit
    bulk = make_engine(settings.database_url, limits=DatabaseLimits.for_admin(settings))
    upgrade(bulk)
    rng = random.Random(100_000)
    made = provision_workspace(name="Bench", owner_email="owner@bench.example")
    other = provision_workspace(name="Noise", owner_email="noise@bench.example")
    members = []
    with UnitOfWork(system_scope(made.workspace_id)) as uow:
        for n in range(3):
            user = User(id=new_id(), email=f"member{n}@bench.example", created_at=datetime.now(UTC))
            uow.session.add(user)
            uow.session.flush()
            uow.session.add(Membership(id=new_id(), user_id=user.id, role="member", created_at=datetime.now(UTC)))
            members.append(user.id)
        uow.commit()
    owners = [made.owner_user_id, *members]
    pipeline, _ = create_pipeline(system_scope(made.workspace_id), PipelineCreate.model_validate(
        {"name": "Bulk", "stages": STAGES}))
    noise_pipeline, _ = create_pipeline(system_scope(other.workspace_id), PipelineCreate.model_validate(
        {"name": "Noise", "stages": STAGES[:6]}))
    stages = pipeline.stages[:6]  # "Never used" stays empty

    log(f"generating {args.deals:,} deals, {args.noise:,} noise deals and {args.activities:,} activities ...")
    rows = deal_rows(rng, made.workspace_id, pipeline.id, stages, owners, args.deals)
    noise = deal_rows(rng, other.workspace_id, noise_pipeline.id, noise_pipeline.stages, [other.owner_user_id],
                      args.noise)
    now = datetime.now(UTC).replace(microsecond=0)
    activities = [{
        "id": new_id(), "workspace_id": made.workspace_id, "created_at": now, "updated_at": now, "archived_at": None,
        "version": 1, "owner_id": rng.choice(owners), "kind": rng.choice(("note", "task", "call", "meeting", "email")),
        "subject": "s", "body": None, "email_to": [],
        "occurred_at": now - timedelta(days=rng.randint(0, 200), seconds=rng.randint(0, 86399)),
    } for _ in range(args.activities)]
    seconds = insert_chunks(bulk, Deal.__table__, rows, args.chunk)
    log(f"inserted {args.deals:,} deals in {seconds:.1f} s ({args.deals / seconds:,.0f} rows/s)")
    insert_chunks(bulk, Deal.__table__, noise, args.chunk)
    insert_chunks(bulk, Activity.__table__, activities, args.chunk)
    with bulk.begin() as connection:
        connection.execute(text("ANALYZE TABLE deals, activities, pipeline_stages"))

    admin = system_scope(made.workspace_id)
    member = Scope(made.workspace_id, Actor("user", members[0]), role="member",
                   visible_owner_ids=frozenset({members[0], members[1]}))
    today = now.date()
    cases: list[tuple[str, Callable[[Scope], Any]]] = [
        ("pipeline summary", lambda s: reports.pipeline_summary(s, PipelineSummaryQuery(pipeline_id=pipeline.id))),
        ("forecast (pipeline, 6 months)", lambda s: reports.forecast(s, ForecastQuery.model_validate(
            {"pipeline_id": pipeline.id, "from": str(today), "to": str(today + timedelta(days=180))}))),
        ("forecast (every pipeline)", lambda s: reports.forecast(s, ForecastQuery())),
        ("win rate (90 days)", lambda s: reports.win_rate(s, WinRateQuery())),
        ("win rate (1 year)", lambda s: reports.win_rate(s, WinRateQuery.model_validate(
            {"from": str(today - timedelta(days=365)), "to": str(today)}))),
        ("activities (90 days)", lambda s: reports.activity_counts(s, ActivityReportQuery())),
    ]
    results = []
    for name, run in cases:
        for who, scope in (("admin", admin), ("restricted member", member)):
            samples = timings(lambda run=run, scope=scope: run(scope), args.runs)  # type: ignore[misc]
            results.append((name, who, statistics.median(samples), samples[int(len(samples) * 0.95) - 1],
                            samples[-1]))

    summary = reports.pipeline_summary(admin, PipelineSummaryQuery(pipeline_id=pipeline.id))
    query = ("SELECT stage_id, currency, COUNT(*), SUM(amount) FROM deals WHERE workspace_id = :w AND pipeline_id = :p"
             " AND archived_at IS NULL AND amount IS NOT NULL GROUP BY stage_id, currency")
    with engine.connect() as connection:
        by_sql = {(s, c): (n, total) for s, c, n, total in connection.execute(
            text(query), {"w": made.workspace_id, "p": pipeline.id})}
        plan = list(connection.execute(text("EXPLAIN " + query), {"w": made.workspace_id, "p": pipeline.id}))
    by_report = {(s.stage_id, m.currency): (m.count, Decimal(m.amount)) for s in summary.stages for m in s.amounts}
    assert by_report == by_sql, "the pipeline summary disagrees with SQL"

    log("")
    log(f"reports on {args.deals:,} deals ({args.noise:,} more in another workspace), {args.runs} runs each, ms")
    log(f"| {'report':32} | {'caller':18} | {'p50':>7} | {'p95':>7} | {'max':>7} |")
    log(f"|{'-' * 34}|{'-' * 20}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name, who, p50, p95, worst in results:
        log(f"| {name:32} | {who:18} | {p50:7.1f} | {p95:7.1f} | {worst:7.1f} |")
    log("")
    log(f"summary = plain SQL GROUP BY: yes ({summary.count:,} live deals in {len(summary.stages)} stages)")
    log(f"summary query plan: type={plan[0][3]} key={plan[0][5]} rows={plan[0][8]} extra={plan[0][9]}")
    log(f"load average: {os.getloadavg()[0]:.1f} (2 cores; other processes inflate the figures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
