"""The relay's side of real-time: committed events published on a Redis channel, one message per pass.

A message is `{"events": [event body, ...]}` with the bodies exactly as the event log serves them (each
with its `sequence`). Redis pub/sub is fire-and-forget: a message published while no realtime process
listens, or lost with a connection, is not an error — realtime processes notice the gap by sequence and
read the missing events from the log (layers/realtime/fanout.py).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from layers.cache.client import guarded

log = logging.getLogger(__name__)


def encode_announcement(events: Sequence[dict[str, Any]]) -> str:
    return json.dumps({"events": list(events)}, separators=(",", ":"), default=str)


def decode_announcement(message: str | bytes) -> list[dict[str, Any]]:
    """The events of a message; a malformed one is logged and counts as none (the heal finds them)."""
    try:
        decoded = json.loads(message)
        events = decoded["events"]
        if not isinstance(events, list):
            raise TypeError("events is not a list")
        return [e for e in events if isinstance(e, dict) and isinstance(e.get("sequence"), int)
                and isinstance(e.get("workspace_id"), str)]
    except (ValueError, TypeError, KeyError):
        log.warning("ignoring a malformed real-time announcement")
        return []


def redis_announcer(channel: str) -> Callable[[Sequence[dict[str, Any]]], None]:
    """The relay's `announce`: PUBLISH the pass's events on `channel` (behind the Redis breaker, so a Redis
    outage costs the relay nothing)."""

    def announce(events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        message = encode_announcement(events)
        guarded("realtime", lambda client: client.publish(channel, message), lambda: None)

    return announce
