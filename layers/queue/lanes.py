"""Lanes: the jobs queue carries the work people wait for; the bulk queue carries imports and what they cause.

A 1,000-row import emits 1,000 events, and each becomes a webhook fan-out and deliveries: in one queue an
export asked for afterwards waited behind all of them (40 s measured). So bulk work has its own queue,
which the worker serves only when the jobs queue gives it nothing (layers/runtime/worker.py).

Work inherits its lane. An import's jobs are enqueued in the bulk lane by name; while a message of the
bulk lane is handled, the dispatcher makes bulk the current lane, so the events and jobs its handler
writes (an import's `contact.created`, the fan-out of that event, the deliveries the fan-out creates)
stay in the bulk lane without each capability passing it along.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

Lane = Literal["main", "bulk"]
MAIN: Lane = "main"
BULK: Lane = "bulk"

_current: ContextVar[Lane] = ContextVar("crm_lane", default=MAIN)


def current_lane() -> Lane:
    """The lane of the message being handled in this thread (main outside any job)."""
    return _current.get()


@contextmanager
def working_in(lane: Lane) -> Iterator[None]:
    """Make `lane` the current lane while a message of that lane is handled."""
    token = _current.set(lane)
    try:
        yield
    finally:
        _current.reset(token)
