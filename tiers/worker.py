"""The worker tier: `crm worker` consumes the jobs queues, relays the outbox and (locally) fires schedules."""
from __future__ import annotations

import sys
from typing import Any

import click

from tiers.common import check_settings


@click.command()
@click.option("--threads", type=int, default=None, help="Consumer threads (default WORKER_THREADS)")
@click.option("--relay/--no-relay", default=True, show_default=True, help="Also run an outbox relay")
@click.option("--scheduler", "run_scheduler", is_flag=True,
              help="Also fire @schedule handlers locally (EventBridge Scheduler does it in AWS)")
@click.option("--metrics-port", type=int, default=None, help="Prometheus port (default WORKER_METRICS_PORT; 0: off)")
def worker(threads: int | None, relay: bool, run_scheduler: bool, metrics_port: int | None) -> None:
    """Run the worker tier: consume the jobs queue, relay the outbox, (locally) fire schedules."""
    import signal
    import threading

    from layers.runtime.children import follow_parent

    # A stop asked for while the app is still being imported (crm local stopped right after it started) ends
    # the process cleanly once set-up is done, instead of killing it mid-import with SIGTERM's default action.
    stop = threading.Event()
    consumer: Any = None

    def _stop(signum: int, _frame: Any) -> None:
        click.echo(f"signal {signum}: finishing messages in hand", err=True)
        stop.set()
        if consumer is not None:
            consumer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    follow_parent()
    settings = check_settings()
    if run_scheduler and not settings.is_local:
        raise click.UsageError("--scheduler is the local stand-in for EventBridge Scheduler (CRM_ENV=local)")
    from layers.observability.logging import configure_process_logging
    from layers.observability.sentry import init_sentry

    configure_process_logging()
    init_sentry(settings)
    import app as composition
    from layers.db.engine import DatabaseLimits, make_engine, use_engine
    from layers.queue.relay import Relay, sqs_publisher
    from layers.queue.sqs import queues, send_job, sqs
    from layers.queue.wakeup import Wakeup
    from layers.runtime.dispatch import schedules
    from layers.runtime.scheduler import LocalScheduler
    from layers.runtime.worker import Worker

    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)
    # Jobs may run longer statements than requests do: the worker tier has its own statement limit.
    use_engine(make_engine(settings.database_url, pool_size=settings.db_pool_size,
                           limits=DatabaseLimits.for_worker(settings)))
    resolved = queues()
    consumer = Worker(composition.app, sqs(), resolved, threads=threads or settings.worker_threads,
                      wait_seconds=settings.worker_wait_seconds, visibility_timeout=settings.worker_visibility_timeout)
    if stop.is_set():
        click.echo("stopped before it started", err=True)
        sys.exit(0)
    if relay:
        from layers.realtime.broadcast import redis_announcer

        outbox = Relay(sqs_publisher(resolved), batch_size=settings.relay_batch_size,
                       announce=redis_announcer(settings.realtime_channel))  # the real-time tier listens there
        threading.Thread(target=outbox.run_forever, args=(stop,), name="outbox-relay", daemon=True,
                         kwargs={"idle_seconds": settings.relay_idle_seconds, "wakeup": Wakeup()}).start()
    local_scheduler = None
    if run_scheduler:
        local_scheduler = LocalScheduler(schedules(composition.app), lambda name: send_job(name))
        local_scheduler.start()
    click.echo(f"worker on {' then '.join(q.name for q in resolved.lanes())} ({consumer.threads} threads, "
               f"relay {'on' if relay else 'off'}, "
               f"scheduler {'local' if local_scheduler else 'EventBridge'})", err=True)
    finished = consumer.run(stop_timeout=settings.worker_stop_timeout)
    if local_scheduler is not None:
        local_scheduler.shutdown()
    sys.exit(0 if finished else 1)
