"""`crm mcp`: the MCP server over stdio for desktop agents (the api tier serves the same tools at /mcp)."""
from __future__ import annotations

import json

import click

from tiers.common import LOCAL_DIR, check_settings, use_local_aws


@click.command("mcp")
@click.option("--api-key", envvar="CRM_API_KEY",
              help="A workspace API key (its scopes decide which tools may write); default locally: crm local's, "
                   "from .crm-local/workspace.json")
def mcp(api_key: str | None) -> None:
    """Serve the CRM's MCP tools over stdio (configure it as a desktop agent's MCP server command)."""
    use_local_aws(required=False)
    settings = check_settings()
    if api_key is None and settings.crm_env == "local" and (LOCAL_DIR / "workspace.json").exists():
        api_key = json.loads((LOCAL_DIR / "workspace.json").read_text())["api_key"]
    if not api_key:
        raise click.UsageError("an API key is required: --api-key or CRM_API_KEY")
    from layers.observability.sentry import init_sentry

    init_sentry(settings)
    import app  # noqa: F401  # the composition root fills the ports the services ask for
    from functions.mcp.server import default_runner
    from functions.mcp.stdio import serve_stdio
    from functions.workspaces.service import Resolver

    resolver, key = Resolver(), api_key
    if resolver.resolve_api_key(key) is None:
        raise click.ClickException("the API key is unknown or revoked")
    serve_stdio(default_runner(), lambda: resolver.resolve_api_key(key))
