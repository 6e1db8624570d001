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
