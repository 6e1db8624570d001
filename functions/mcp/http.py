"""`/mcp` over streamable HTTP: an ASGI app that authenticates the API key, then hands the request to the SDK.

Stateless JSON mode, on purpose: the api tier runs 2–10 tasks behind an ALB without sticky sessions, so no
MCP session may live in one process. Each POST is a complete exchange (the SDK's `stateless=True`, answers as
`application/json` rather than an SSE stream); a client's `initialize` and its later calls may land on
different tasks. The cost: no server-to-client requests or notifications — none of our tools needs them.

The SDK's DNS-rebinding check (Host/Origin allow-lists) is left off: it protects servers that trust the
network or a cookie, and this one trusts only the Bearer key a rebinding page cannot read or send.

Because nothing outlives a request, each request gets its own session manager (its `run()` is entered and left
around the one request). That needs no ASGI lifespan, which the WSGI bridge (a2wsgi) and httpx's ASGI
transport in tests do not send.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from functions.mcp.server import ToolRunner, build_server, current_caller
from layers.auth.principals import API_KEY_PREFIX
from layers.cache.ratelimit import FailureBudget
from layers.http.problems import PROBLEM_JSON, problem_body
from shared.context import Scope
from shared.errors import AppError, Forbidden, RateLimited, Unauthorized
from shared.ids import new_id

KeyResolver = Callable[[str], Scope | None]  # the REST resolver's resolve_api_key (functions/workspaces)


class McpHttpApp:
    def __init__(self, runner: ToolRunner, resolve_api_key: KeyResolver, *, max_body_bytes: int,
                 failures: FailureBudget | None = None, trusted_proxy_hops: int = 1) -> None:
        self._server: Server[Any] = build_server(runner)
        self._resolve_api_key = resolve_api_key
        self._max_body_bytes = max_body_bytes
        self._failures = failures
        self._trusted_proxy_hops = trusted_proxy_hops

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            caller = await self._guarded_authenticate(scope)
        except AppError as error:
            await _send_problem(send, error)
            return
        token = current_caller.set(caller)
        try:
            manager = StreamableHTTPSessionManager(self._server, json_response=True, stateless=True,
                                                   max_request_body_size=self._max_body_bytes)
            async with manager.run():
                await manager.handle_request(scope, receive, send)
        finally:
            current_caller.reset(token)

    async def _guarded_authenticate(self, scope: AsgiScope) -> Scope:
        """With a FailureBudget (the REST one: same Redis keys, so REST and MCP failures add up), an address
        that failed too often is refused with 429 before its key is looked up."""
        headers = _headers(scope)
        if self._failures is None:
            return await self._authenticate(headers)
        client = self._client_address(scope, headers)
        retry_after = await anyio.to_thread.run_sync(self._failures.retry_after, client)
        if retry_after is not None:
            raise RateLimited(f"too many failed authentications from this address: at most "
                              f"{self._failures.budget} per {self._failures.window_seconds} s",
                              headers={"Retry-After": str(retry_after)})
        try:
            return await self._authenticate(headers)
        except Unauthorized:
            await anyio.to_thread.run_sync(self._failures.spend, client)
            raise

    def _client_address(self, scope: AsgiScope, headers: dict[str, str]) -> str:
        # As the WSGI adapter derives it (layers/http/adapter.py): each trusted proxy appended what it saw.
        forwarded = [ip.strip() for ip in headers.get("x-forwarded-for", "").split(",") if ip.strip()]
        if forwarded and self._trusted_proxy_hops > 0:
            return forwarded[max(len(forwarded) - self._trusted_proxy_hops, 0)]
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def _authenticate(self, headers: dict[str, str]) -> Scope:
        """As the REST AuthMiddleware treats an API key; agents authenticate with workspace keys only."""
        kind, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            raise Unauthorized("use Authorization: Bearer <workspace API key>")
        if not token.startswith(API_KEY_PREFIX):
            raise Unauthorized("MCP accepts workspace API keys only")
        scope = await anyio.to_thread.run_sync(self._resolve_api_key, token)  # a database read when not cached
        if scope is None:
            raise Unauthorized("the API key is unknown or revoked")
        workspace_header = headers.get("x-workspace-id")
        if workspace_header and workspace_header != scope.workspace_id:
            raise Forbidden("the API key belongs to another workspace")
        return scope


def _headers(scope: AsgiScope) -> dict[str, str]:
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}


async def _send_problem(send: Send, error: AppError) -> None:
    request_id = new_id()
    body = json.dumps(problem_body(error, request_id)).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"x-request-id", request_id.encode()),
               (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to start or stop (see the module docstring); answer a server that sends lifespan anyway.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def mcp_asgi_app() -> McpHttpApp:
    """The `/mcp` app with the REST key resolver; build it after `app` is imported (the ports are filled)."""
    from functions.mcp.server import default_runner
    from functions.workspaces.service import Resolver
    from shared.settings import get_settings

    settings = get_settings()
    failures = FailureBudget(budget=settings.auth_failure_limit, window_seconds=settings.auth_failure_window_seconds,
                             fallback_keys=settings.rate_limit_fallback_keys)  # as app.py builds the REST one
    return McpHttpApp(default_runner(), Resolver().resolve_api_key, max_body_bytes=settings.max_body_bytes,
                      failures=failures, trusted_proxy_hops=settings.trusted_proxy_hops)
