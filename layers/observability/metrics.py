"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set (crm serve sets it), every worker process
writes its samples there and /metrics sums them, so the figures are right with several workers."""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "crm_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
REDIS_DEGRADED = Counter(
    "crm_redis_degraded_total",
    "Operations served without Redis (cache fall-through, local rate limiter, ...)",
    ["component"],
)
REDIS_AVAILABLE = Gauge(
    "crm_redis_available", "1 while Redis answers, 0 after a failure", multiprocess_mode="mostrecent"
)
REDIS_AVAILABLE.set(1)
DATABASE_AVAILABLE = Gauge(
    "crm_database_available", "1 while the database answers, 0 after it could not be reached",
    multiprocess_mode="mostrecent",
)
DATABASE_AVAILABLE.set(1)
DATABASE_REFUSED = Counter(
    "crm_database_refused_total", "Requests answered 503 because the database could not serve them", ["reason"]
)
CACHE_LOOKUPS = Counter("crm_cache_lookups_total", "Record cache lookups", ["result"])
CACHE_INVALIDATIONS_LOST = Counter(
    "crm_cache_invalidations_lost_total", "Writes that could not invalidate Redis and moved the cache epoch instead"
)
RATE_LIMITED = Counter("crm_rate_limited_total", "Requests refused with 429", ["limit"])

JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
JOBS_PROCESSED = Counter("crm_jobs_processed_total", "Jobs whose handler succeeded (message deleted)", ["handler"])
JOBS_FAILED = Counter("crm_jobs_failed_total", "Job runs that raised", ["handler"])
JOBS_RETRIED = Counter("crm_jobs_retried_total", "Failed jobs left on the queue for another receive", ["handler"])
JOBS_DEAD_LETTERED = Counter(
    "crm_jobs_dead_lettered_total", "Jobs sent to the dead-letter queue", ["handler", "reason"]
)
JOB_DURATION = Histogram("crm_job_duration_seconds", "Time a handler took", ["handler"], buckets=JOB_BUCKETS)
JOB_QUEUE_LAG = Histogram(
    "crm_job_queue_lag_seconds", "From a message being sent to a worker receiving it (per lane: main, bulk)",
    ["lane"], buckets=JOB_BUCKETS,
)
JOBS_IN_FLIGHT = Gauge("crm_jobs_in_flight", "Messages a worker holds right now", multiprocess_mode="livesum")
OUTBOX_PUBLISHED = Counter("crm_outbox_published_total", "Outbox rows the relay published")
OUTBOX_LAG = Histogram(
    "crm_outbox_lag_seconds", "From an outbox row being written to the relay publishing it", buckets=JOB_BUCKETS
)

# The real-time tier (layers/realtime).
REALTIME_CONNECTED = Gauge("crm_realtime_connected_clients", "Socket.io clients connected right now",
                           multiprocess_mode="livesum")
REALTIME_EMITTED = Counter("crm_realtime_events_emitted_total", "Events sent to clients (one per client)",
                           ["source"])  # live, or backfill (a resume)
REALTIME_DROPPED = Counter("crm_realtime_dropped_clients_total", "Clients disconnected by the server", ["reason"])
REALTIME_LATENCY = Histogram(
    "crm_realtime_commit_to_emit_seconds",
    "From an event occurring (its transaction's write) to a realtime process sending it to a client (live only)",
    buckets=LATENCY_BUCKETS,
)
REALTIME_GAP_FILLS = Counter("crm_realtime_gap_fills_total",
                             "Events a realtime process read from the event log because no announcement brought them")


def render() -> tuple[bytes, str]:
    """The exposition text for /metrics (summed over worker processes when multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
