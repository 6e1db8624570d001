"""Pure webhook rules: retry backoff, when to give up, secrets; event type patterns come from shared/."""
from __future__ import annotations

import base64
import math
import secrets as random_source
from datetime import UTC, datetime, timedelta
from random import Random

# One pattern language for webhooks and real-time subscriptions (re-exported: the fan-out speaks it).
from shared.event_patterns import PATTERN, any_type_matches, object_prefixes, type_matches

__all__ = ["PATTERN", "any_type_matches", "object_prefixes", "type_matches"]

SECRET_PREFIX = "whsec_"
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
CLAIM_LEASE = timedelta(minutes=5)  # a claimed delivery is not sent again before its job had time to run
QUEUED_RETRY_LIMIT = timedelta(seconds=900)  # SQS's longest delay: shorter backoffs ride a delayed job
LOG_RETENTION = timedelta(days=30)
MAX_SUBSCRIPTIONS = 100


def new_secret() -> str:
    """`whsec_` and 32 random bytes, base64url."""
    return SECRET_PREFIX + base64.urlsafe_b64encode(random_source.token_bytes(32)).decode().rstrip("=")


def retry_delay(attempts: int, rng: Random) -> timedelta:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempts-1))]."""
    ceiling = min(RETRY_CAP, RETRY_BASE * (2 ** max(0, min(attempts - 1, 20))))
    return timedelta(seconds=rng.uniform(0, ceiling.total_seconds()))


def queued_retry_seconds(delay: timedelta) -> int | None:
    """The SQS delay (whole seconds, rounded up) that sends a retry after `delay`; None when it is longer
    than SQS can hold a message back, and the retry sweep sends it instead."""
    if delay > QUEUED_RETRY_LIMIT:
        return None
    return min(int(QUEUED_RETRY_LIMIT.total_seconds()), math.ceil(delay.total_seconds()))


def occurred_since(occurred_at: str | None, created_at: datetime) -> bool:
    """Whether an event (its ISO `occurred_at`) happened once the webhook existed: a new webhook gets no
    event from before it was created, even one still on its way through the outbox or the queue."""
    if not occurred_at:
        return True
    try:
        occurred = datetime.fromisoformat(occurred_at)
    except ValueError:
        return True
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    return occurred >= created_at


def gives_up(first_attempt_at: datetime, now: datetime) -> bool:
    return now - first_attempt_at >= GIVE_UP_AFTER


def signing_secrets(secret: str, previous: str | None, previous_expires_at: datetime | None,
                    now: datetime) -> list[str]:
    """The current secret, and the previous one while its grace period lasts."""
    if previous and previous_expires_at is not None and now < previous_expires_at:
        return [secret, previous]
    return [secret]
