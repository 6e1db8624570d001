"""`crm mcp`: the same tools over stdio, for a desktop agent that starts the server as its child process.

The API key is resolved at start (`crm mcp` refuses an unknown or revoked one before the agent is told of any
tool) and again for every call, through the REST resolver and its cache, so revoking the key stops a running
agent. Each call checks the key's scopes, spends the rate limits and writes with `source="mcp"`, as over
HTTP. The SDK's stdio server moves our stdout to stderr while it serves, so log lines
cannot corrupt the protocol stream.
"""
from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server

from functions.mcp.server import CallerSource, ToolRunner, build_server


def serve_stdio(runner: ToolRunner, caller: CallerSource) -> None:
    anyio.run(_serve, runner, caller)


async def _serve(runner: ToolRunner, caller: CallerSource) -> None:
    server = build_server(runner, caller)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
