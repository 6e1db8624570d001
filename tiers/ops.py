"""Operator commands: migrate, makemigration, workspace, dlq, schedules, openapi."""
from __future__ import annotations

import json

import click

from tiers.common import check_settings, migrate_database, reaching_aws, use_local_aws


@click.command()
def migrate() -> None:
    """Apply database migrations (Alembic) up to the newest."""
    check_settings()
    migrate_database()
    click.echo("migrated", err=True)


@click.command()
@click.option("--message", "-m", required=True, help="What the migration does")
@click.option("--rev-id", required=True, help="Revision id, e.g. 0004")
@click.option("--replace", is_flag=True, help="Regenerate an existing revision in place (while developing it)")
def makemigration(message: str, rev_id: str, replace: bool) -> None:
    """Write an Alembic migration for what the models changed (autogenerate on a scratch database)."""
    from layers.db.migrate import autogenerate
    from tiers.models import load_all_models

    click.echo(str(autogenerate(message, rev_id, metadata=load_all_models(), replace=replace)))


@click.group()
def workspace() -> None:
    """Workspace administration."""


@workspace.command("create")
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
def workspace_create(name: str, owner_email: str) -> None:
    """Create a workspace, its owner and an admin API key; print them as JSON (the key is shown once)."""
    check_settings()
    from functions.workspaces.service import provision_workspace
    from shared.normalize import normalize_email

    try:
        email = normalize_email(owner_email)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--owner-email") from None
    click.echo(provision_workspace(name=name, owner_email=email).model_dump_json(indent=2))


@click.group()
def dlq() -> None:
    """Dead-lettered jobs of the jobs and bulk queues: list them, send them back."""


@dlq.command("list")
@click.option("--limit", default=100, show_default=True, type=int)
def dlq_list(limit: int) -> None:
    """Print dead-lettered jobs as JSON lines: id, queue, handler, reason, error, receive count, body.

    Listing does not change them: the receive count is the one they had when dead-lettered."""
    endpoint = use_local_aws()
    check_settings()
    from layers.queue.sqs import queues, sqs
    from layers.runtime.worker import dead_letters

    with reaching_aws(endpoint):
        entries = dead_letters(sqs(), queues(), limit=limit)
    for entry in entries:
        click.echo(json.dumps(entry))


@dlq.command("redrive")
@click.option("--id", "message_ids", multiple=True, help="Only these message ids (default: all)")
@click.option("--limit", default=1000, show_default=True, type=int)
def dlq_redrive(message_ids: tuple[str, ...], limit: int) -> None:
    """Send dead-lettered jobs back to the queue they came from (jobs or bulk)."""
    endpoint = use_local_aws()
    check_settings()
    from layers.queue.sqs import queues, sqs
    from layers.runtime.worker import redrive

    with reaching_aws(endpoint):
        moved = redrive(sqs(), queues(), message_ids=set(message_ids) or None, limit=limit)
    click.echo(json.dumps({"redriven": moved}))


@click.command()
def schedules() -> None:
    """Print every @schedule handler and its expression (what stacks/queues.yaml must declare)."""
    import app as composition
    from layers.runtime.dispatch import schedules as registry

    click.echo(json.dumps(registry(composition.app), indent=2, sort_keys=True))


@click.command()
def openapi() -> None:
    """Print the OpenAPI 3.1 document."""
    import app as composition
    from layers.http.openapi import build_openapi

    click.echo(json.dumps(build_openapi(composition.app), indent=2))
