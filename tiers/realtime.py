"""The real-time tier: `crm realtime` (or `python -m tiers.realtime`), a Socket.io server on granian's ASGI
interface, fed by the relay's announcements through Redis and by the event log.

This module is composition only: it fills the real-time layer's ports from the capabilities (the
workspaces Resolver for auth, the event log, the realtime capability's owner, filter and subscription
checks) and starts the server. Each granian worker process calls `create_app` and runs its own server;
processes share nothing but Redis and the database.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from tiers.common import prepare_metrics_dir

DEFAULT_PORT = 3001


class _EventLog:
    """The event log port, read through the events capability."""

    def events_after(self, workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        from functions.events.service import events_after

        return events_after(workspace_id, after, limit)

    def oldest_sequence(self, workspace_id: str) -> int | None:
        from functions.events.service import oldest_sequence

        return oldest_sequence(workspace_id)

    def last_sequences(self, workspace_ids: Sequence[str]) -> dict[str, int]:
        from functions.events.service import last_sequences

        return last_sequences(list(workspace_ids))


def build_server() -> Any:
    """The RealtimeServer of this process, its ports filled from the capabilities."""
    import redis.asyncio as aioredis

    import app as composition  # noqa: F401 - registers every record service and the layers' providers
    from functions.realtime import service as realtime
    from functions.workspaces.service import Resolver
    from layers.auth.verifier import get_verifier
    from layers.cache.ratelimit import FailureBudget
    from layers.realtime.auth import ConnectAuth
    from layers.realtime.ports import Ports
    from layers.realtime.server import RealtimeConfig, RealtimeServer
    from shared.settings import get_settings

    settings = get_settings()

    def redis_client() -> aioredis.Redis:
        if settings.redis_url is None:  # alone, with the in-process stand-in: no fan-out to other processes
            from fakeredis import FakeAsyncRedis

            return FakeAsyncRedis(decode_responses=True)
        return aioredis.Redis.from_url(settings.redis_url, decode_responses=True, socket_connect_timeout=1.0,
                                       health_check_interval=30)

    config = RealtimeConfig(
        channel=settings.realtime_channel, cursor_secret=settings.cursor_secret,
        send_queue_size=settings.realtime_send_queue_size,
        slow_client_seconds=settings.realtime_slow_client_seconds, recheck_seconds=settings.realtime_recheck_seconds,
        heal_seconds=settings.realtime_heal_seconds, redis_keepalive_seconds=settings.realtime_redis_keepalive_seconds,
        backfill_limit=settings.realtime_backfill_limit,
        presence_ttl_seconds=settings.realtime_presence_ttl_seconds, trusted_proxy_hops=settings.trusted_proxy_hops,
        cors_origins=settings.realtime_cors_origins, websocket_only=settings.realtime_websocket_only)
    ports = Ports(event_log=_EventLog(), owner_of=realtime.owner_of, filter_matches=realtime.filter_matches,
                  check_subscription=realtime.check_subscription)
    failures = FailureBudget(budget=settings.auth_failure_limit, window_seconds=settings.auth_failure_window_seconds,
                             fallback_keys=settings.rate_limit_fallback_keys)
    return RealtimeServer(ports, ConnectAuth(Resolver(), get_verifier), config, redis_client, failures)


def create_app() -> Any:
    """The ASGI app granian's workers call (factory): logging and Sentry first, then the server."""
    from layers.observability.logging import configure_process_logging
    from layers.observability.sentry import init_sentry
    from shared.settings import get_settings

    configure_process_logging()
    init_sentry(get_settings())
    return build_server().asgi


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tiers.realtime [--port 3001] [--workers N]`: the same as `crm realtime`."""
    realtime.main(args=list(argv) if argv is not None else None, prog_name="crm realtime")


@click.command("realtime")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="Processes; more than one offers websockets only (long-polling needs one process)")
@click.option("--kill-timeout", default=25, show_default=True, type=int,
              help="Seconds a process gets to stop before it is killed")
def realtime(host: str, port: int, workers: int, kill_timeout: int) -> None:
    """Run the real-time tier: Socket.io on granian (ASGI), fed from the event log through Redis."""
    from layers.runtime.children import follow_parent

    follow_parent()
    serve(host, port, workers, kill_timeout=kill_timeout)


def serve(host: str, port: int, workers: int, *, kill_timeout: int = 25) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    if workers > 1:
        # The kernel spreads connections over the processes: a long-polling session's requests would land on
        # processes that do not know it. Behind one port, several processes offer websockets only.
        os.environ["REALTIME_WEBSOCKET_ONLY"] = "true"
        print(f"realtime: {workers} processes share port {port}: websocket transport only", file=sys.stderr)
    prepare_metrics_dir()
    from shared.settings import get_settings, reset_settings

    reset_settings()
    get_settings()  # refuse a bad configuration before forking
    Granian(
        "tiers.realtime:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        websockets=True,
        backlog=2048,
        log_access=False,
        workers_kill_timeout=kill_timeout,
    ).serve()


if __name__ == "__main__":
    main()
