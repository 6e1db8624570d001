"""Import a 100,000-row contacts CSV through the import job, then export it again: time and peak memory.

    python bench/import_100k.py                      # 100,000 rows, SQLite in a temp dir, moto in process
    python bench/import_100k.py --rows 20000 --chunk 1000
    DATABASE_URL=mysql+pymysql://root@127.0.0.1:3306/crm_bench REDIS_URL=redis://127.0.0.1:6379/11 \
        python bench/import_100k.py

Set REDIS_URL for memory figures: without it the in-process Redis stand-in lives in this process and
holds every record the import caches (~0.75 KB each), which reads as growth that is not the import's.

The CSV (one row in 100 invalid, so rejects are stored and written too) is generated into a temporary
file and streamed to the files bucket (moto). The import is queued through the service, as
POST /v1/imports/{id}/commit does, and its `imports_run` jobs run in this process one chunk per message
(a dedicated worker: the change events the rows emit are relayed and set aside, not fanned out).
Peak RSS is sampled after every chunk: it levels off after the first chunks, which is the point (the
file is streamed, a chunk at a time, and never held in memory). `--tracemalloc` also reports the
Python heap's peak (it slows the run down about twice).

Prints one line: IMPORT_RESULT {"rows":..., "import_seconds":..., "rows_per_second":..., "chunks":...,
"created":..., "rejected":..., "export_seconds":..., "exported":..., "peak_rss_mb":..., "rss_mb_by_progress":
[...], "tracemalloc_peak_mb":...}.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--chunk", type=int, default=1_000, help="IMPORT_CHUNK_ROWS")
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--no-export", action="store_true")
    return p.parse_args(argv)


def environment(scratch: str) -> None:
    os.environ.setdefault("CRM_ENV", "test")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.db")
    os.environ.setdefault("CURSOR_SECRET", "bench-cursor-secret")
    os.environ.setdefault("FIREBASE_PROJECT_ID", "crm-bench")
    os.environ["ACCESS_LOG"] = "false"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")


def rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("First Name,Last Name,E-mail,Job Title,Tags\r\n")
        for i in range(rows):
            email = f"person{i}@example.com" if i % 100 else f"not-an-email-{i}"
            out.write(f'P{i},"Family, {i % 977}",{email},"Title ""{i % 13}""",t{i % 7};bulk\r\n')


def run(args: argparse.Namespace) -> dict[str, Any]:
    from moto import mock_aws

    os.environ["IMPORT_CHUNK_ROWS"] = str(args.chunk)
    from shared.settings import get_settings, reset_settings

    reset_settings()
    import fakeredis

    from layers.cache.client import use_redis

    if not os.environ.get("REDIS_URL"):
        use_redis(fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True))
    from layers.db.engine import DatabaseLimits, get_engine, make_engine, use_engine
    from layers.db.migrate import upgrade

    settings = get_settings()  # the import and export jobs run as in `crm worker`: with the worker tier's limits
    use_engine(make_engine(settings.database_url, limits=DatabaseLimits.for_worker(settings)))
    upgrade(get_engine())
    import app
    from functions.exports import service as exports
    from functions.exports.schemas import ExportCreate
    from functions.imports import service as imports
    from functions.imports.schemas import ImportCommit, ImportCreate
    from functions.workspaces.service import provision_workspace
    from layers.aws.clients import client, reset_clients
    from layers.queue.relay import Relay
    from layers.runtime.dispatch import Message, dispatch, handler_name
    from layers.storage import files
    from shared.context import system_scope

    result: dict[str, Any] = {"rows": args.rows, "chunk": args.chunk}
    with mock_aws(), tempfile.TemporaryDirectory() as scratch:
        reset_clients()
        client("s3").create_bucket(Bucket=get_settings().files_bucket)
        made = provision_workspace(name="Bench", owner_email="bench@example.com")
        scope = system_scope(made.workspace_id, source="api")
        source = Path(scratch) / "contacts.csv"
        write_csv(source, args.rows)
        result["csv_mb"] = round(source.stat().st_size / 1e6, 1)
        key = files.workspace_key(made.workspace_id, "uploads", "contacts.csv")
        with source.open("rb") as stream:
            files.put_stream(key, stream, content_type="text/csv")
        source.unlink()

        pending: list[str] = []
        relay = Relay(lambda bodies: pending.extend(b for b in bodies if handler_name(b).endswith("_run")))

        def drain(handler: str, on_each: Any = None) -> int:
            ran = 0
            while relay.run_once() or pending:
                while pending:
                    body = pending.pop(0)
                    if handler_name(body) == handler:
                        dispatch(app.app, Message(body=body))
                        ran += 1
                        if on_each is not None:
                            on_each(ran)
            return ran

        relay.drain()
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        created = imports.create_import(scope, ImportCreate(object_type="contacts", source_key=key))
        mapping = {"First Name": "first_name", "Last Name": "last_name", "E-mail": "email", "Job Title": "job_title",
                   "Tags": "tags"}
        imports.commit(scope, created.id, ImportCommit.model_validate({"mapping": mapping}))
        samples: list[float] = []
        every = max(1, (args.rows // args.chunk) // 10)
        result["chunks"] = drain("imports_run", lambda ran: samples.append(rss_mb()) if ran % every == 0 else None)
        elapsed = time.perf_counter() - started
        done = imports.get_import(scope, created.id)
        result.update(import_seconds=round(elapsed, 1), rows_per_second=round(args.rows / elapsed),
                      status=done.status, created=done.counts.created, rejected=done.counts.rejected,
                      rss_mb_by_progress=samples)
        if not args.no_export:
            started = time.perf_counter()
            export = exports.create_export(scope, ExportCreate(object_type="contacts", format="csv"))
            drain("exports_run")
            result["export_seconds"] = round(time.perf_counter() - started, 1)
            result["exported"] = exports.get_export(scope, export.id).row_count
        if args.tracemalloc:
            result["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
            tracemalloc.stop()
        result["peak_rss_mb"] = rss_mb()
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as scratch:
        environment(scratch)
        sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the app's packages are at the root
        print("IMPORT_RESULT " + json.dumps(run(args)))


if __name__ == "__main__":
    main()
