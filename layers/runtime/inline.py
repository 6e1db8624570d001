"""An in-memory jobs queue run in the caller's thread: outbox rows straight to their consumers.

Tests use it to run what a request enqueued (`relay → handlers`) without SQS; it keeps the worker's
rules: a poison message is dead-lettered at once, a failing one is retried up to `max_receives`.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalice.app import Chalice

from layers.queue.jobs import PoisonMessage
from layers.queue.relay import Relay
from layers.runtime.dispatch import Message, dispatch, handler_name

log = logging.getLogger(__name__)


@dataclass
class DeadLetter:
    message: Message
    reason: str


class InlineQueue:
    def __init__(self, app: Chalice, *, max_receives: int = 5) -> None:
        self.app = app
        self.max_receives = max_receives
        self.pending: deque[Message] = deque()
        self.dead: list[DeadLetter] = []
        self.done: list[tuple[str, Any]] = []  # (handler, result) of each successful run
        self.relay = Relay(self.publish)

    def publish(self, bodies: Sequence[str]) -> None:
        self.pending.extend(Message(body=body) for body in bodies)

    def send(self, body: str) -> None:
        self.pending.append(Message(body=body))

    def run(self, *, limit: int = 10_000) -> list[tuple[str, Any]]:
        """Relay what is committed and run every message (and what they enqueue) until quiet."""
        ran: list[tuple[str, Any]] = []
        for _ in range(limit):
            if not self.pending and not self.relay.run_once():
                return ran
            while self.pending:
                message = self.pending.popleft()
                try:
                    result = dispatch(self.app, message)
                except PoisonMessage as poison:
                    self.dead.append(DeadLetter(message, poison.reason))
                    continue
                except Exception as exc:
                    if message.receive_count >= self.max_receives:
                        self.dead.append(DeadLetter(message, f"failed {message.receive_count} times: {exc!r}"))
                    else:
                        message.receive_count += 1
                        self.pending.append(message)
                    log.info("inline job failed (receive %s): %r", message.receive_count, exc)
                    continue
                entry = (handler_name(message.body), result)
                ran.append(entry)
                self.done.append(entry)
        raise RuntimeError(f"jobs still running after {limit} rounds (a job that enqueues itself forever?)")
