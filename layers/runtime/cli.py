"""The `crm` command: serve, worker, local, migrate, workspace, invoke, dlq, schedules, openapi.

Imports stay inside the commands: `serve` must set PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client, and Sentry must start before the app module is imported.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

LOCAL_DIR = Path(".crm-local")
LOCAL_STOP_SECONDS = 4.0  # `crm local` stops within this on Ctrl-C, killing what has not stopped by then


@click.group()
def main() -> None:
    """CRM backend: API tier, local all-in-one mode and operator commands."""


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Worker processes (one per core)")
@click.option("--threads", default=8, show_default=True, type=int, help="Blocking threads per worker")
@click.option("--kill-timeout", default=25, show_default=True, type=int,
              help="Seconds a worker process gets to stop before it is killed (under ECS's stopTimeout, 30 s)")
def serve(host: str, port: int, workers: int, threads: int, kill_timeout: int) -> None:
    """Run the API tier on the production HTTP server (granian, WSGI)."""
    from layers.runtime.children import follow_parent

    follow_parent()
    _prepare_metrics_dir()
    _check_settings()
    _serve(host, port, workers, threads, kill_timeout=kill_timeout)


@main.command()
@click.option("--threads", type=int, default=None, help="Consumer threads (default WORKER_THREADS)")
@click.option("--relay/--no-relay", default=True, show_default=True, help="Also run an outbox relay")
@click.option("--scheduler", "run_scheduler", is_flag=True,
              help="Also fire @schedule handlers locally (EventBridge Scheduler does it in AWS)")
@click.option("--metrics-port", type=int, default=None, help="Prometheus port (default WORKER_METRICS_PORT; 0: off)")
def worker(threads: int | None, relay: bool, run_scheduler: bool, metrics_port: int | None) -> None:
    """Run the worker tier: consume the jobs queue, relay the outbox, (locally) fire schedules."""
    import signal
    import threading

    from layers.runtime.children import follow_parent

    follow_parent()
    settings = _check_settings()
    if run_scheduler and not settings.is_local:
        raise click.UsageError("--scheduler is the local stand-in for EventBridge Scheduler (CRM_ENV=local)")
    from layers.observability.logging import configure_process_logging
    from layers.observability.sentry import init_sentry

    configure_process_logging()
    init_sentry(settings)
    import app as composition
    from layers.db.engine import DatabaseLimits, make_engine, use_engine
    from layers.queue.relay import Relay, sqs_publisher
    from layers.queue.sqs import queues, send_job, sqs
    from layers.queue.wakeup import Wakeup
    from layers.runtime.dispatch import schedules
    from layers.runtime.scheduler import LocalScheduler
    from layers.runtime.worker import Worker

    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)
    # Jobs may run longer statements than requests do: the worker tier has its own statement limit.
    use_engine(make_engine(settings.database_url, pool_size=settings.db_pool_size,
                           limits=DatabaseLimits.for_worker(settings)))
    resolved = queues()
    consumer = Worker(composition.app, sqs(), resolved, threads=threads or settings.worker_threads,
                      wait_seconds=settings.worker_wait_seconds, visibility_timeout=settings.worker_visibility_timeout)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        click.echo(f"signal {signum}: finishing messages in hand", err=True)
        stop.set()
        consumer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if relay:
        from layers.realtime.broadcast import redis_announcer

        outbox = Relay(sqs_publisher(resolved), batch_size=settings.relay_batch_size,
                       announce=redis_announcer(settings.realtime_channel))  # the real-time tier listens there
        threading.Thread(target=outbox.run_forever, args=(stop,), name="outbox-relay", daemon=True,
                         kwargs={"idle_seconds": settings.relay_idle_seconds, "wakeup": Wakeup()}).start()
    local_scheduler = None
    if run_scheduler:
        local_scheduler = LocalScheduler(schedules(composition.app), lambda name: send_job(name))
        local_scheduler.start()
    click.echo(f"worker on {' then '.join(q.name for q in resolved.lanes())} ({consumer.threads} threads, "
               f"relay {'on' if relay else 'off'}, "
               f"scheduler {'local' if local_scheduler else 'EventBridge'})", err=True)
    finished = consumer.run(stop_timeout=settings.worker_stop_timeout)
    if local_scheduler is not None:
        local_scheduler.shutdown()
    sys.exit(0 if finished else 1)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3001, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="Processes; more than one offers websockets only (long-polling needs one process)")
def realtime(host: str, port: int, workers: int) -> None:
    """Run the real-time tier: Socket.io on granian (ASGI), fed from the event log through Redis."""
    from tiers.realtime import main as realtime_main

    realtime_main(["--host", host, "--port", str(port), "--workers", str(workers)])


@main.group()
def dlq() -> None:
    """Dead-lettered jobs of the jobs and bulk queues: list them, send them back."""


@dlq.command("list")
@click.option("--limit", default=100, show_default=True, type=int)
def dlq_list(limit: int) -> None:
    """Print dead-lettered jobs as JSON lines: id, queue, handler, reason, error, receive count, body.

    Listing does not change them: the receive count is the one they had when dead-lettered."""
    endpoint = _use_local_aws()
    _check_settings()
    from layers.queue.sqs import queues, sqs
    from layers.runtime.worker import dead_letters

    with _reaching_aws(endpoint):
        entries = dead_letters(sqs(), queues(), limit=limit)
    for entry in entries:
        click.echo(json.dumps(entry))


@dlq.command("redrive")
@click.option("--id", "message_ids", multiple=True, help="Only these message ids (default: all)")
@click.option("--limit", default=1000, show_default=True, type=int)
def dlq_redrive(message_ids: tuple[str, ...], limit: int) -> None:
    """Send dead-lettered jobs back to the queue they came from (jobs or bulk)."""
    endpoint = _use_local_aws()
    _check_settings()
    from layers.queue.sqs import queues, sqs
    from layers.runtime.worker import redrive

    with _reaching_aws(endpoint):
        moved = redrive(sqs(), queues(), message_ids=set(message_ids) or None, limit=limit)
    click.echo(json.dumps({"redriven": moved}))


@main.command()
def schedules() -> None:
    """Print every @schedule handler and its expression (what stacks/queues.yaml must declare)."""
    import app as composition
    from layers.runtime.dispatch import schedules as registry

    click.echo(json.dumps(registry(composition.app), indent=2, sort_keys=True))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
def local(host: str, port: int) -> None:
    """The whole system on embedded defaults: SQLite, an in-process Redis stand-in, moto's server; the API
    server and the worker tier as child processes. Ctrl-C (or SIGTERM) stops it all within seconds."""
    import signal
    import threading

    from layers.runtime.children import Children
    from layers.runtime.local_aws import forget as forget_local_aws

    _prepare_metrics_dir()
    os.environ.setdefault("CRM_ENV", "local")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{LOCAL_DIR}/crm.db")
    # An idle worker thread sits in an SQS long poll until it ends: keep it short, so a stop is quick.
    os.environ.setdefault("WORKER_WAIT_SECONDS", "1")
    os.environ.setdefault("WORKER_STOP_TIMEOUT", str(int(LOCAL_STOP_SECONDS) - 1))
    LOCAL_DIR.mkdir(exist_ok=True)
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = _start_fake_redis()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        _start_moto()
    settings = _check_settings()
    if settings.crm_env != "local":
        raise click.UsageError("crm local runs only with CRM_ENV=local")
    _migrate()
    _bootstrap_local_workspace()
    recorded = _create_local_aws_resources()
    click.echo(f"AWS stand-in (moto) on {os.environ['AWS_ENDPOINT_URL']}; `crm dlq list` here uses it "
               f"(recorded in {recorded})", err=True)

    stop = threading.Event()
    stopped_by: list[int] = []

    def _stop(signum: int, _frame: Any) -> None:
        stopped_by.append(signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    children = Children()
    cli = [sys.executable, "-m", "layers.runtime.cli"]
    try:
        children.spawn("worker", [*cli, "worker", "--scheduler", "--threads", "2", "--metrics-port", "0"])
        children.spawn("server", [*cli, "serve", "--host", host, "--port", str(port), "--workers", "1",
                                  "--threads", "8", "--kill-timeout", str(int(LOCAL_STOP_SECONDS) - 1)])
        click.echo(f"CRM API on http://{host}:{port}  (docs: http://{host}:{port}/docs)", err=True)
        while not stop.wait(0.2):
            gone = children.exited()
            if gone is not None:
                click.echo(f"the {gone.name} process exited ({gone.process.returncode}): stopping", err=True)
                break
    finally:
        report = children.stop(deadline_seconds=LOCAL_STOP_SECONDS)
        forget_local_aws(LOCAL_DIR)
    how = "cleanly" if report.clean else f"killed {', '.join(report.killed) or 'nothing'}, exit codes {report.codes}"
    click.echo(f"stopped in {report.seconds:.1f} s ({how})", err=True)
    sys.exit(0 if stopped_by and report.clean else 1)


@main.command()
def migrate() -> None:
    """Apply database migrations (Alembic) up to the newest."""
    _check_settings()
    _migrate()
    click.echo("migrated", err=True)


@main.command()
@click.option("--message", "-m", required=True, help="What the migration does")
@click.option("--rev-id", required=True, help="Revision id, e.g. 0004")
@click.option("--replace", is_flag=True, help="Regenerate an existing revision in place (while developing it)")
def makemigration(message: str, rev_id: str, replace: bool) -> None:
    """Write an Alembic migration for what the models changed (autogenerate on a scratch database)."""
    from layers.db.migrate import autogenerate

    click.echo(str(autogenerate(message, rev_id, replace=replace)))


@main.group()
def workspace() -> None:
    """Workspace administration."""


@workspace.command("create")
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
def workspace_create(name: str, owner_email: str) -> None:
    """Create a workspace, its owner and an admin API key; print them as JSON (the key is shown once)."""
    _check_settings()
    from functions.workspaces.service import provision_workspace
    from shared.normalize import normalize_email

    try:
        email = normalize_email(owner_email)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--owner-email") from None
    click.echo(provision_workspace(name=name, owner_email=email).model_dump_json(indent=2))


@main.command()
@click.argument("handler")
@click.option("--event", "event_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--api-key", envvar="CRM_API_KEY",
              help="Sent as Authorization: Bearer for HTTP events (default locally: crm local's, from "
                   ".crm-local/workspace.json)")
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="A real record id for the sample's placeholder id (01JAAA...); a second --id for its "
                   "second one (01JBBB...)")
def invoke(handler: str, event_file: str, api_key: str | None, ids: tuple[str, ...]) -> None:
    """Run HANDLER on a sample event from events/, like a local Lambda invoke; print its result.

    The event must be one HANDLER takes: an HTTP event for another route is refused (exit 2)."""
    _use_local_aws(required=False)
    settings = _check_settings()
    from layers.runtime.invoke import InvokeRefused, invoke_handler, placeholders_left, with_ids

    event = json.loads(Path(event_file).read_text())
    if api_key is None and settings.crm_env == "local" and (LOCAL_DIR / "workspace.json").exists():
        api_key = json.loads((LOCAL_DIR / "workspace.json").read_text())["api_key"]
    try:
        left = placeholders_left(with_ids(event, ids)) if "httpMethod" in event else []
        result = invoke_handler(handler, event, api_key=api_key, ids=ids)
    except InvokeRefused as refused:
        raise click.UsageError(str(refused)) from None
    if left:
        click.echo(f"note: the event still names the placeholder id(s) {', '.join(left)}, which no record has; "
                   f"pass a real one with --id", err=True)
    click.echo(json.dumps(result, indent=2, default=str))
    status = result.get("statusCode", 200) if isinstance(result, dict) else 200
    sys.exit(0 if int(status) < 500 else 1)


@main.command()
def openapi() -> None:
    """Print the OpenAPI 3.1 document."""
    import app as composition
    from layers.http.openapi import build_openapi

    click.echo(json.dumps(build_openapi(composition.app), indent=2))


def _use_local_aws(*, required: bool = True) -> str | None:
    """Without an AWS endpoint of its own, a command run beside `crm local` uses its moto server.

    A record left by a `crm local` that is gone fails the command when it `required` AWS, else is ignored."""
    from layers.runtime.local_aws import NotRunning, use_recorded

    try:
        endpoint = use_recorded(LOCAL_DIR)
    except NotRunning as gone:
        if required:
            raise click.ClickException(str(gone)) from None
        click.echo(f"note: {gone} ({LOCAL_DIR}/aws.json ignored)", err=True)
        return None
    if endpoint:
        click.echo(f"using crm local's AWS stand-in at {endpoint} (from {LOCAL_DIR}/aws.json)", err=True)
    return endpoint


@contextlib.contextmanager
def _reaching_aws(local_endpoint: str | None) -> Iterator[None]:
    """Say what is wrong when AWS cannot be reached, instead of a traceback."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    try:
        yield
    except EndpointConnectionError as exc:
        if local_endpoint:
            raise click.ClickException(f"nothing answers at {local_endpoint}, which {LOCAL_DIR}/aws.json names: "
                                       "is crm local still running?") from None
        raise click.ClickException(f"AWS cannot be reached: {exc}") from None
    except NoCredentialsError:
        raise click.ClickException("no AWS credentials: set AWS_* (or AWS_PROFILE), or run this beside a running "
                                   "crm local, whose queues it then uses") from None


def _check_settings() -> Any:
    from shared.settings import get_settings, reset_settings

    reset_settings()
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(f"configuration refused: {exc}") from None


def _migrate() -> None:
    """Migrations get an engine of their own, without the statement limit requests have."""
    from layers.db.engine import DatabaseLimits, make_engine
    from layers.db.migrate import upgrade
    from shared.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=1, limits=DatabaseLimits.for_admin(settings))
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _serve(host: str, port: int, workers: int, threads: int, *, kill_timeout: int = 25) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "layers.runtime.wsgi_entry:application",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        backlog=2048,
        log_access=False,  # the adapter writes one JSON line per request
        workers_kill_timeout=kill_timeout,  # under the ALB's deregistration delay and ECS stopTimeout (30 s)
    ).serve()


def _prepare_metrics_dir() -> None:
    """Each worker process writes its samples here and /metrics sums them. It must be set before
    anything imports prometheus_client, in this process and in the workers it forks."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    metrics_dir = tempfile.mkdtemp(prefix="crm-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)


def _start_fake_redis() -> str:
    """An in-process Redis stand-in, served over TCP so the server and worker processes share it."""
    from layers.runtime.local_redis import start_local_redis

    return start_local_redis().url


def _start_moto() -> None:
    """moto's server stands in for SQS and S3 (and the rest of AWS) in local mode."""
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per SQS long poll otherwise
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _create_local_aws_resources() -> Path:
    """The queues and the bucket on moto; where they are is recorded for the commands run beside."""
    from layers.aws.clients import client
    from layers.queue.sqs import create_queues
    from layers.runtime.local_aws import record
    from shared.settings import get_settings

    queues = create_queues()
    bucket = get_settings().files_bucket
    client("s3").create_bucket(Bucket=bucket)
    return record(LOCAL_DIR, queues, files_bucket=bucket)


def _bootstrap_local_workspace() -> None:
    """First run: a 'Local' workspace and an admin key, kept in .crm-local/ so later runs reuse it."""
    marker = LOCAL_DIR / "workspace.json"
    if marker.exists():
        data = json.loads(marker.read_text())
        click.echo(f"workspace {data['workspace_id']}; API key in {marker}", err=True)
        return
    from functions.workspaces.service import provision_workspace

    provisioned = provision_workspace(name="Local", owner_email="owner@example.com")
    marker.write_text(provisioned.model_dump_json(indent=2))
    marker.chmod(0o600)
    click.echo(f"created workspace {provisioned.workspace_id}\nAPI key (also in {marker}): {provisioned.api_key}",
               err=True)


if __name__ == "__main__":
    main()
