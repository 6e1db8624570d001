"""What several tiers' commands share: settings checked once, crm local's directory, metrics, AWS beside crm local.

Imports stay inside the functions: `serve` must set PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client, and Sentry must start before the app module is imported.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

LOCAL_DIR = Path(".crm-local")
LOCAL_STOP_SECONDS = 4.0  # `crm local` stops within this on Ctrl-C, killing what has not stopped by then


def check_settings() -> Any:
    from shared.settings import get_settings, reset_settings

    reset_settings()
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(f"configuration refused: {exc}") from None


def prepare_metrics_dir() -> None:
    """Each worker process writes its samples here and /metrics sums them. It must be set before
    anything imports prometheus_client, in this process and in the workers it forks."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    metrics_dir = tempfile.mkdtemp(prefix="crm-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)


def migrate_database() -> None:
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


def use_local_aws(*, required: bool = True) -> str | None:
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
def reaching_aws(local_endpoint: str | None) -> Iterator[None]:
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
