"""`crm local`: the whole system in one command on embedded defaults (SQLite, an in-process Redis stand-in,
moto's server), with the api, worker and real-time tiers as child processes (granian forks its workers)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from tiers.common import LOCAL_DIR, LOCAL_STOP_SECONDS, check_settings, migrate_database, prepare_metrics_dir


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--realtime-port", default=3001, show_default=True, type=int, help="The real-time tier (0: off)")
def local(host: str, port: int, realtime_port: int) -> None:
    """The whole system on embedded defaults: SQLite, an in-process Redis stand-in, moto's server; the API
    server, the worker tier and the real-time tier as child processes. Ctrl-C (or SIGTERM) stops it all within
    seconds."""
    import signal
    import threading

    from layers.runtime.children import Children
    from layers.runtime.local_aws import forget as forget_local_aws

    prepare_metrics_dir()
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
    settings = check_settings()
    if settings.crm_env != "local":
        raise click.UsageError("crm local runs only with CRM_ENV=local")
    migrate_database()
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
    cli = [sys.executable, "-m", "tiers.cli"]
    try:
        children.spawn("worker", [*cli, "worker", "--scheduler", "--threads", "2", "--metrics-port", "0"],
                       handles_sigterm=True)
        children.spawn("server", [*cli, "serve", "--host", host, "--port", str(port), "--workers", "1",
                                  "--threads", "8", "--kill-timeout", str(int(LOCAL_STOP_SECONDS) - 1)])
        if realtime_port:
            children.spawn("realtime", [*cli, "realtime", "--host", host, "--port", str(realtime_port),
                                        "--kill-timeout", str(int(LOCAL_STOP_SECONDS) - 1)], handles_sigterm=True)
        click.echo(f"CRM API on http://{host}:{port}  (docs: http://{host}:{port}/docs)", err=True)
        if realtime_port:
            click.echo(f"Real-time (Socket.io) on http://{host}:{realtime_port}", err=True)
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
