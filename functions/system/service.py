"""Readiness checks: the database and Redis answer, both checked at once, within a deadline."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, wait

from layers.cache.client import ping
from layers.db.engine import database_answers

# A load balancer's health check gives up after a few seconds; answer well within 2 s whatever hangs.
READY_DEADLINE_SECONDS = 1.5


class _Check:
    """One dependency's check, run in a daemon thread of its own. While a check is still running (its
    dependency hangs), later callers wait on that same run instead of starting another, so a frozen
    dependency never piles up threads."""

    def __init__(self, name: str, check: Callable[[], bool]) -> None:
        self.name = name
        self._check = check
        self._lock = threading.Lock()
        self._running: Future[bool] | None = None

    def start(self) -> Future[bool]:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(target=self._run, args=(self._running,), name=f"ready-{self.name}",
                                 daemon=True).start()
            return self._running

    def _run(self, future: Future[bool]) -> None:
        try:
            future.set_result(bool(self._check()))
        except Exception:  # a check that raises is a dependency that does not answer
            future.set_result(False)


_CHECKS = (_Check("database", database_answers), _Check("redis", ping))


def readiness(deadline: float = READY_DEADLINE_SECONDS) -> dict[str, bool]:
    """Each dependency → whether it answered within `deadline` seconds (both are asked concurrently)."""
    runs = {check.name: check.start() for check in _CHECKS}
    wait(runs.values(), timeout=deadline)
    return {name: run.done() and run.result() for name, run in runs.items()}
