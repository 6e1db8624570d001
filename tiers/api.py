"""The api tier: `crm serve` runs granian (WSGI), whose every worker process builds the app with `wsgi_application`.

The app, Sentry and prometheus_client are imported inside the functions: `serve` must set
PROMETHEUS_MULTIPROC_DIR before anything imports prometheus_client, and Sentry must start before the app
module is imported (its integration needs that order). `/mcp` goes to the MCP server (functions/mcp, an ASGI
app behind a2wsgi), every other path to the Chalice adapter.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from tiers.common import check_settings, prepare_metrics_dir

WSGI_TARGET = "tiers.api:wsgi_application"  # a factory: granian calls it once in each worker process
MCP_PATH = "/mcp"  # the MCP server for agents (functions/mcp); every other path is the REST API

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@click.command()
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
    prepare_metrics_dir()
    check_settings()
    _serve(host, port, workers, threads, kill_timeout=kill_timeout)


def wsgi_application() -> Any:
    """What the WSGI server runs in each worker: Sentry first, then the app."""
    from layers.observability.sentry import init_sentry
    from shared.settings import get_settings

    init_sentry(get_settings())
    import app as composition

    return with_mcp(composition.wsgi)


def with_mcp(rest: WsgiApp) -> WsgiApp:
    """`/mcp` to the MCP server (an ASGI app, bridged by a2wsgi on its own event-loop thread), the rest to
    Chalice's adapter untouched. Built per worker process: a2wsgi starts its loop thread when created."""
    from a2wsgi import ASGIMiddleware

    from functions.mcp.http import mcp_asgi_app

    mcp = ASGIMiddleware(mcp_asgi_app())  # type: ignore[arg-type]  # starlette's and a2wsgi's ASGI types differ

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
            return _StartedBody(mcp(environ, start_response))  # type: ignore[arg-type]
        return rest(environ, start_response)

    return dispatch


class _StartedBody:
    """A body iterable whose first chunk is already taken. a2wsgi calls start_response only once its body is
    iterated, but granian reads the status and headers as soon as the app returns (they came out empty: 200 with
    no Content-Type); taking the first chunk here makes start_response happen before the return."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = iter(body)
        self._first = next(self._body, b"")

    def __iter__(self) -> Iterator[bytes]:
        yield self._first
        yield from self._body

    def close(self) -> None:  # WSGI: the server closes the body; a2wsgi's generator cleans up on close
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


def _serve(host: str, port: int, workers: int, threads: int, *, kill_timeout: int = 25) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        WSGI_TARGET,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        backlog=2048,
        log_access=False,  # the adapter writes one JSON line per request
        workers_kill_timeout=kill_timeout,  # under the ALB's deregistration delay and ECS stopTimeout (30 s)
    ).serve()
