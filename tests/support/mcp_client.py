"""The official `mcp` client against our MCP server: in process (the ASGI app through httpx's ASGI transport),
or over real HTTP (the `crm serve` process), or over stdio (`crm mcp` as a child process)."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

T = TypeVar("T")


@asynccontextmanager
async def http_session(url: str, api_key: str | None, *, app: Any = None) -> AsyncIterator[ClientSession]:
    """An initialised session; with `app`, requests go to that ASGI app in process instead of the network."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    transport = httpx2.ASGITransport(app=app) if app is not None else None
    async with httpx2.AsyncClient(headers=headers, transport=transport, timeout=30) as client, \
            streamable_http_client(url, http_client=client) as (read_stream, write_stream), \
            ClientSession(read_stream, write_stream) as session:
        await session.initialize()
        yield session


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Tests are synchronous (the suite has no async plugin): one event loop per exchange."""
    return anyio.run(work)


def payload(result: types.CallToolResult) -> Any:
    """What a tool answered (or the problem details of its error), as JSON."""
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    return json.loads(text.text)
