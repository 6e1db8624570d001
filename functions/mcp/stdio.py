"""`crm mcp`: the same tools over stdio, for a desktop agent that starts the server as its child process.

The API key is resolved once, at start: a key that is unknown or revoked stops the command before the agent
is told of any tool. Each call still checks the key's scopes, spends the rate limits and writes with
`source="mcp"`, as over HTTP. The SDK's stdio server moves our stdout to stderr while it serves, so log lines
cannot corrupt the protocol stream.
"""
from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server

from functions.mcp.server import ToolRunner, build_server, current_caller
from shared.context import Scope


def serve_stdio(runner: ToolRunner, caller: Scope) -> None:
    anyio.run(_serve, runner, caller)


async def _serve(runner: ToolRunner, caller: Scope) -> None:
    current_caller.set(caller)  # one caller for the process's life (tasks started below inherit it)
    server = build_server(runner)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
