"""The `crm` command: one sub-command per tier (serve, worker, realtime, local, invoke) and the operator commands.

Each tier's command lives in its own module beside this one; their heavy imports stay inside the commands
(`serve` must set PROMETHEUS_MULTIPROC_DIR before anything imports prometheus_client, and Sentry must start
before the app module is imported).
"""
from __future__ import annotations

import click

from tiers.api import serve
from tiers.invoke import invoke
from tiers.local import local
from tiers.mcp import mcp
from tiers.ops import dlq, makemigration, migrate, openapi, schedules, workspace
from tiers.realtime import realtime
from tiers.worker import worker


@click.group()
def main() -> None:
    """CRM backend: API tier, local all-in-one mode and operator commands."""


for command in (serve, worker, realtime, dlq, schedules, local, migrate, makemigration, workspace, invoke, openapi,
                mcp):
    main.add_command(command)


if __name__ == "__main__":
    main()
