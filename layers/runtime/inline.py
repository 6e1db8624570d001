"""An in-memory jobs queue run in the caller's thread: outbox rows straight to their consumers.

Tests use it to run what a request enqueued (`relay → handlers`) without SQS; it keeps the worker's
rules: the jobs lane before the bulk lane, a poison message is given up at once, a failing one is
retried up to `max_receives` and then given up (its capability told, as the worker does). A job sent
with a delay waits in `delayed` until `run_delayed()` (time passing, without sleeping).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalice.app import Chalice

from layers.queue.jobs import PoisonMessage, gave_up
from layers.queue.lanes import MAIN, Lane
from layers.queue.relay import Outgoing, Relay
from layers.runtime.dispatch import Message, dispatch, handler_name

log = logging.getLogger(__name__)


@dataclass
class DeadLetter:
    message: Message
    reason: str


@dataclass
class Delayed:
    message: Message
    delay_seconds: int


class InlineQueue:
    def __init__(self, app: Chalice, *, max_receives: int = 5) -> None:
        self.app = app
        self.max_receives = max_receives
        self.pending: deque[Message] = deque()
        self.delayed: list[Delayed] = []
        self.dead: list[DeadLetter] = []
        self.done: list[tuple[str, Any]] = []  # (handler, result) of each successful run
        self.ran_lanes: list[tuple[str, Lane]] = []  # (handler, lane) of each run, in order
        self.relay = Relay(self.publish)

    def publish(self, messages: Sequence[Outgoing]) -> None:
        for outgoing in messages:
            message = Message(body=outgoing.body, lane=outgoing.lane)
            if outgoing.delay_seconds:
                self.delayed.append(Delayed(message, outgoing.delay_seconds))
            else:
                self.pending.append(message)

    def send(self, body: str, *, lane: Lane = MAIN) -> None:
        self.pending.append(Message(body=body, lane=lane))

    def run_delayed(self, *, limit: int = 10_000) -> list[tuple[str, Any]]:
        """As if every delay had passed: queue the delayed jobs, then `run()`."""
        waiting, self.delayed = self.delayed, []
        self.pending.extend(entry.message for entry in waiting)
        return self.run(limit=limit)

    def run(self, *, limit: int = 10_000) -> list[tuple[str, Any]]:
        """Relay what is committed and run every message (and what they enqueue) until quiet."""
        ran: list[tuple[str, Any]] = []
        for _ in range(limit):
            if not self.pending and not self.relay.run_once():
                return ran
            while message := self._next():
                try:
                    result = dispatch(self.app, message)
                except PoisonMessage as poison:
                    self._give_up(message, poison.reason)
                    continue
                except Exception as exc:
                    if message.receive_count >= self.max_receives:
                        self._give_up(message, f"failed {message.receive_count} times (last error: "
                                               f"{type(exc).__name__})")
                    else:
                        message.receive_count += 1
                        self.pending.append(message)
                    log.info("inline job failed (receive %s): %r", message.receive_count, exc)
                    continue
                entry = (handler_name(message.body), result)
                ran.append(entry)
                self.done.append(entry)
                self.ran_lanes.append((entry[0], message.lane))
        raise RuntimeError(f"jobs still running after {limit} rounds (a job that enqueues itself forever?)")

    def _next(self) -> Message | None:
        """The oldest message of the jobs lane, else the oldest of the bulk lane (as the worker serves them)."""
        if not self.pending:
            return None
        chosen = next((m for m in self.pending if m.lane == MAIN), self.pending[0])
        self.pending.remove(chosen)
        return chosen

    def _give_up(self, message: Message, reason: str) -> None:
        gave_up(message.body, reason)
        self.dead.append(DeadLetter(message, reason))
