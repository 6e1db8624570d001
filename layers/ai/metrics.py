"""Prometheus metrics of the AI layer (multiprocess-safe like layers/observability/metrics.py). Labels are
provider names and outcomes only: never a workspace, a prompt or an answer."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

AI_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

AI_ATTEMPTS = Counter("crm_ai_attempts_total", "Provider calls made by the AI router", ["provider", "outcome"])
AI_TOKENS = Counter("crm_ai_tokens_total", "Tokens providers reported", ["provider", "direction"])  # in | out
AI_LATENCY = Histogram(
    "crm_ai_attempt_duration_seconds", "Time one provider call took", ["provider", "outcome"], buckets=AI_BUCKETS
)
AI_RUNS = Counter("crm_ai_runs_total", "AIRouter.run calls by how they ended", ["result"])  # ok | failed
