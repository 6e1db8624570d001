"""Pure webhook rules: type patterns, backoff, giving up, rotation grace, secrets."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

import pytest

from functions.webhooks import rules

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("pattern", "event_type", "expected"), [
    ("*", "contact.created", True),
    ("*", "webhook.test", True),
    ("contact.*", "contact.created", True),
    ("contact.*", "contact.merge_undone", True),
    ("contact.*", "company.created", False),
    ("contact.*", "contacts.created", False),
    ("deal.stage_changed", "deal.stage_changed", True),
    ("deal.stage_changed", "deal.updated", False),
])
def test_type_patterns(pattern: str, event_type: str, expected: bool) -> None:
    # GIVEN a pattern and an event type
    # THEN it matches as documented
    assert rules.type_matches(pattern, event_type) is expected


@pytest.mark.parametrize("pattern", ["*", "contact.*", "deal.stage_changed", "custom_object.created"])
def test_valid_patterns(pattern: str) -> None:
    assert rules.PATTERN.match(pattern)


@pytest.mark.parametrize("pattern", ["", "contact", "*.created", "Contact.created", "contact.created.x", "a b.c"])
def test_invalid_patterns(pattern: str) -> None:
    assert not rules.PATTERN.match(pattern)


def test_backoff_doubles_with_full_jitter_up_to_the_cap() -> None:
    # GIVEN a seeded random source
    rng = Random(7)

    # WHEN delays are drawn for successive attempts
    delays = {n: [rules.retry_delay(n, rng) for _ in range(200)] for n in (1, 2, 3, 8, 50)}

    # THEN each lies in [0, min(1 h, 30 s * 2^(n-1))], and they spread over the range
    for n, drawn in delays.items():
        ceiling = min(timedelta(hours=1), timedelta(seconds=30 * 2 ** min(n - 1, 20)))
        assert all(timedelta(0) <= d <= ceiling for d in drawn)
        assert max(drawn) > ceiling * 0.8 and min(drawn) < ceiling * 0.2


def test_giving_up_after_a_day() -> None:
    assert not rules.gives_up(T0, T0 + timedelta(hours=23, minutes=59))
    assert rules.gives_up(T0, T0 + timedelta(hours=24))


def test_the_previous_secret_signs_only_during_its_grace() -> None:
    # GIVEN a rotation at T0
    expires = T0 + rules.PREVIOUS_SECRET_GRACE

    # THEN both sign before it expires, the new one alone after
    assert rules.signing_secrets("new", "old", expires, T0 + timedelta(hours=1)) == ["new", "old"]
    assert rules.signing_secrets("new", "old", expires, expires) == ["new"]
    assert rules.signing_secrets("new", None, None, T0) == ["new"]


def test_secrets_are_random_32_bytes() -> None:
    first, second = rules.new_secret(), rules.new_secret()
    assert first.startswith("whsec_") and len(first) == len("whsec_") + 43 and first != second


def test_object_prefixes() -> None:
    assert rules.object_prefixes(["contact.*", "contact.created"]) == {"contact"}
    assert rules.object_prefixes(["*", "deal.*"]) == {"*", "deal"}


@pytest.mark.parametrize(("delay", "expected"), [
    (timedelta(0), 0),
    (timedelta(seconds=0.2), 1),
    (timedelta(seconds=29.01), 30),
    (timedelta(seconds=900), 900),
    (timedelta(seconds=900.5), None),
    (timedelta(hours=1), None),
])
def test_backoffs_sqs_can_hold_ride_a_delayed_job(delay: timedelta, expected: int | None) -> None:
    # GIVEN a backoff
    # THEN up to SQS's 15 minutes it is a job delay in whole seconds (never early), beyond that the sweep's
    assert rules.queued_retry_seconds(delay) == expected


def test_the_first_retries_come_within_seconds() -> None:
    # GIVEN the backoff of the first retry, drawn many times
    delays = [rules.retry_delay(1, Random(seed)) for seed in range(200)]

    # THEN each is at most 30 s, and rides a delayed job (not the once-a-minute sweep)
    assert max(delays) <= timedelta(seconds=30)
    assert all(rules.queued_retry_seconds(d) is not None for d in delays)


@pytest.mark.parametrize(("occurred_at", "expected"), [
    ("2025-12-31T23:59:59.999999Z", False),
    ("2026-01-01T00:00:00Z", True),
    ("2026-01-01T00:00:00.000001Z", True),
    ("2026-01-01T01:00:00+01:00", True),
    ("2026-01-01T00:59:59+01:00", False),
    (None, True),
    ("not a time", True),
])
def test_a_webhook_gets_only_events_from_once_it_existed(occurred_at: str | None, expected: bool) -> None:
    # GIVEN a webhook created at T0 and an event's occurred_at
    # THEN the event is for it only if it occurred at or after T0 (an unreadable time does not hide an event)
    assert rules.occurred_since(occurred_at, T0) is expected
