"""The local scheduler reads EventBridge expressions the way EventBridge does, and knows every schedule."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import app
from layers.runtime.dispatch import schedules
from layers.runtime.scheduler import LocalScheduler, trigger_for

THURSDAY = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("expression", "expected"), [
    ("cron(0 3 * * ? *)", datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
    ("cron(30 9 ? * 2-6 *)", datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),  # Mon-Fri in EventBridge's numbering
    ("cron(0 9 ? * 1 *)", datetime(2026, 11, 29, 9, 0, tzinfo=UTC)),  # 1 is Sunday, not Monday
    ("cron(15 * 1 * ? *)", datetime(2026, 12, 1, 0, 15, tzinfo=UTC)),
])
def test_cron_expressions_fire_when_eventbridge_would(expression: str, expected: datetime) -> None:
    # GIVEN an EventBridge cron expression
    # WHEN its next fire time after a Thursday 01:00 UTC is asked
    fire = trigger_for(expression).get_next_fire_time(None, THURSDAY)

    # THEN it is the time EventBridge would pick
    assert fire == expected


def test_rate_expressions_repeat_at_their_interval() -> None:
    # GIVEN rate expressions
    # WHEN two consecutive fire times are computed
    for expression, interval in (("rate(1 minute)", timedelta(minutes=1)), ("rate(6 hours)", timedelta(hours=6)),
                                 ("rate(2 days)", timedelta(days=2))):
        trigger = trigger_for(expression)
        first = trigger.get_next_fire_time(None, THURSDAY)
        assert first is not None
        second = trigger.get_next_fire_time(first, first + timedelta(microseconds=1))

        # THEN they are one interval apart
        assert second - first == interval


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "rate(1 minutes)", "rate(5 minute)", "every 5 minutes",
                                        "cron(0 3 * * *)", "cron(0 3 * * 1 *)", "cron(0 3 L * ? *)"])
def test_expressions_eventbridge_refuses_are_refused(expression: str) -> None:
    # GIVEN an expression EventBridge would not accept (or one the local scheduler cannot honour)
    # WHEN it is parsed
    # THEN it is refused rather than fired at a wrong time
    with pytest.raises(ValueError):
        trigger_for(expression)


def test_the_local_scheduler_knows_every_schedule_of_the_app() -> None:
    # GIVEN the app's schedule handlers
    registry = schedules(app.app)
    sent: list[str] = []

    # WHEN the local scheduler is built from them and started
    scheduler = LocalScheduler(registry, sent.append)
    scheduler.start()
    try:
        planned = scheduler.next_runs()
    finally:
        scheduler.shutdown()

    # THEN each has a next run, and nothing fired at start-up
    assert registry and set(planned) == set(registry)
    assert sent == []


def test_a_fired_schedule_sends_its_handler_name() -> None:
    # GIVEN a scheduler whose send fails once (the queue is down) and then works
    sent: list[str] = []
    failures = iter([True])

    def send(name: str) -> None:
        if next(failures, False):
            raise ConnectionError("queue down")
        sent.append(name)

    # WHEN a schedule fires twice
    LocalScheduler._fire("maintenance_expire_keys", send)
    LocalScheduler._fire("maintenance_expire_keys", send)

    # THEN the failure is logged, not raised (the next tick retries), and the second send went out
    assert sent == ["maintenance_expire_keys"]
