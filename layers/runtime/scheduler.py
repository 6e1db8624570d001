"""The local stand-in for EventBridge Scheduler: fires `{"handler": NAME}` on each schedule's expression.

In AWS the schedules in stacks/queues.yaml send that message to the jobs queue; `crm local` runs
this instead, so the same handlers run on the same expressions through the same queue and worker.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AWS_DAYS = {"1": "sun", "2": "mon", "3": "tue", "4": "wed", "5": "thu", "6": "fri", "7": "sat"}


def trigger_for(expression: str) -> BaseTrigger:
    """An APScheduler trigger for an EventBridge `rate(...)` or `cron(...)` expression (UTC)."""
    rate = _RATE.match(expression.strip())
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise ValueError(f"invalid rate expression {expression!r} (EventBridge: 1 minute, 5 minutes)")
        return IntervalTrigger(**{unit.rstrip("s") + "s": value}, timezone="UTC")
    cron = _CRON.match(expression.strip())
    if cron:
        fields = cron.group(1).split()
        if len(fields) != 6:
            raise ValueError(f"cron expressions have six fields: {expression!r}")
        minute, hour, day, month, day_of_week, year = fields
        if "?" not in (day, day_of_week):
            raise ValueError(f"cron needs '?' in day-of-month or day-of-week: {expression!r}")
        if any(mark in f for f in fields for mark in ("L", "W", "#")):
            raise ValueError(f"L, W and # are not supported locally: {expression!r}")
        return CronTrigger(
            minute=minute, hour=hour, month=month, year=year, timezone="UTC",
            day=None if day == "?" else day,
            day_of_week=None if day_of_week == "?" else _days(day_of_week),
        )
    raise ValueError(f"not an EventBridge schedule expression: {expression!r}")


def _days(field: str) -> str:
    """EventBridge numbers days 1-7 from Sunday; APScheduler 0-6 from Monday: use names."""
    return re.sub(r"[1-7]", lambda m: _AWS_DAYS[m.group(0)], field)


class LocalScheduler:
    def __init__(self, schedules: dict[str, str], send: Callable[[str], object]) -> None:
        self._scheduler = BackgroundScheduler(timezone="UTC")
        for name, expression in sorted(schedules.items()):
            self._scheduler.add_job(self._fire, trigger_for(expression), args=[name, send], id=name,
                                    max_instances=1, coalesce=True, misfire_grace_time=60)

    @staticmethod
    def _fire(name: str, send: Callable[[str], object]) -> None:
        try:
            send(name)
        except Exception:  # the queue is down: the next tick tries again, as EventBridge would retry
            log.exception("could not send schedule", extra={"handler": name})

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=False)

    def next_runs(self) -> dict[str, str]:
        return {job.id: job.next_run_time.isoformat() for job in self._scheduler.get_jobs()}
