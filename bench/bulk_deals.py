"""Bulk-load deals into one pipeline of one workspace, straight into MariaDB (bench/run.py's
`pipeline_summary_100k` fixture; bench/reports.py does the same for its own database).

    python bench/bulk_deals.py --workspace-id W --pipeline-id P --stages '[{"id":..,"kind":..}]' \
        --owner-id U --deals 100000 --archived 2000

Inserting 100,000 deals through the API would take minutes (validation, history, outbox events and
associations per deal); this writes the `deals` rows with the app's own table (SQLAlchemy Core
executemany, `--chunk` rows per statement batch, one transaction) and then runs ANALYZE TABLE. No
history, stage changes, outbox events or associations are written, so the rows are only fit for
reports and boards. Run by bench/run.py as a subprocess with the server's environment (DATABASE_URL,
and PYTHONPATH under --at), so the models come from the tree being measured.

Prints one line: BULK_RESULT {"deals":..., "archived":..., "generate_seconds":..., "insert_seconds":...,
"analyze_seconds":...}.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CURRENCIES = ("EUR", "USD", "JPY")
PLACES = {"EUR": 2, "USD": 2, "JPY": 0}
LOST_REASONS = ("price", "timing", "competitor", "no decision", "budget")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace-id", required=True)
    p.add_argument("--pipeline-id", required=True)
    p.add_argument("--stages", required=True, help='JSON list of {"id": ..., "kind": "open|won|lost"}')
    p.add_argument("--owner-id", action="append", required=True, help="deal owners (repeatable)")
    p.add_argument("--deals", type=int, default=100_000, help="live deals")
    p.add_argument("--archived", type=int, default=2_000, help="archived deals on top (the summary skips them)")
    p.add_argument("--chunk", type=int, default=5_000)
    p.add_argument("--seed", type=int, default=100_000)
    return p.parse_args(argv)


def deal_rows(rng: random.Random, args: argparse.Namespace, stages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Like bench/reports.py: 90 % valued (EUR/USD/JPY), 80 % with an expected close date, closed_at and
    lost_reason consistent with the stage kind, created 20-400 days ago."""
    from shared.ids import new_id

    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    total = args.deals + args.archived
    every = total // args.archived if args.archived else 0
    rows = []
    archived = 0
    for i in range(total):
        stage = rng.choice(stages)
        currency = rng.choice(CURRENCIES)
        valued = rng.random() < 0.9
        created = now - timedelta(days=rng.randint(20, 400), seconds=rng.randint(0, 86399))
        closed = None
        if stage["kind"] != "open":
            closed = min(created + timedelta(days=rng.randint(0, 120), seconds=rng.randint(0, 86399)), now)
        is_archived = bool(every) and archived < args.archived and i % every == every - 1
        archived += is_archived
        rows.append({
            "id": new_id(), "workspace_id": args.workspace_id, "created_at": created, "updated_at": created,
            "archived_at": now if is_archived else None, "version": 1, "owner_id": rng.choice(args.owner_id),
            "name": f"Bulk deal {i}",
            "amount": Decimal(rng.randint(1, 5_000_000)).scaleb(-PLACES[currency]) if valued else None,
            "currency": currency if valued else None, "pipeline_id": args.pipeline_id, "stage_id": stage["id"],
            "expected_close_date": today + timedelta(days=rng.randint(-60, 300)) if rng.random() < 0.8 else None,
            "closed_at": closed, "lost_reason": rng.choice(LOST_REASONS) if stage["kind"] == "lost" else None,
            "company_id": None, "tags": [], "custom": {}, "stage_entered_at": created, "last_activity_at": None,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sqlalchemy import func, insert, select, text

    from functions.deals.models import Deal
    from layers.db.engine import DatabaseLimits, make_engine
    from shared.settings import get_settings

    stages = json.loads(args.stages)
    settings = get_settings()  # a bulk load: no statement limit (the api tier's would cut a big batch short)
    engine = make_engine(settings.database_url, limits=DatabaseLimits.for_admin(settings))
    t0 = time.perf_counter()
    rows = deal_rows(random.Random(args.seed), args, stages)
    t1 = time.perf_counter()
    table = Deal.__table__
    with engine.begin() as connection:
        for start in range(0, len(rows), args.chunk):
            connection.execute(insert(table), rows[start:start + args.chunk])
    t2 = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("ANALYZE TABLE deals"))
        live = connection.execute(select(func.count()).select_from(table).where(
            table.c.workspace_id == args.workspace_id, table.c.pipeline_id == args.pipeline_id,
            table.c.archived_at.is_(None))).scalar_one()
    t3 = time.perf_counter()
    engine.dispose()
    print("BULK_RESULT " + json.dumps({
        "deals": live, "archived": len(rows) - live, "chunk": args.chunk,
        "generate_seconds": round(t1 - t0, 2), "insert_seconds": round(t2 - t1, 2),
        "analyze_seconds": round(t3 - t2, 2), "rows_per_second": round(len(rows) / (t2 - t1)),
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
