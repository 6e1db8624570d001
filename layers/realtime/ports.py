"""What the real-time layer asks of the capabilities, as plain callables and protocols.

tiers/realtime.py fills them (the workspaces Resolver, the event log, the record services); this layer
never imports a capability. Every port is blocking (database, Redis): the server calls them in threads.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.context import Scope


class EventLog(Protocol):
    """The event log of one workspace, by sequence (functions/events)."""

    def events_after(self, workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` event bodies with sequence > `after`, oldest first."""

    def oldest_sequence(self, workspace_id: str) -> int | None:
        """The oldest sequence the log still keeps (None: the log is empty)."""

    def last_sequences(self, workspace_ids: Sequence[str]) -> dict[str, int]:
        """The last sequence handed out per workspace (0 for one without events)."""


@dataclass(frozen=True)
class Owner:
    """Who owns a record now, for visibility: `owned` is False for objects without owners (visible to all)."""

    owned: bool
    owner_id: str | None = None
    exists: bool = True


OwnerOf = Callable[[str, str, str], Owner]  # (workspace id, object type, record id)
# (workspace id, object type, record id, filter groups) → does the record match now (the search's own SQL)
FilterMatches = Callable[[str, str, str, list[dict[str, Any]]], bool]
# (scope, what the client sent) → the subscription as applied; raises ValidationFailed (a 422 problem)
CheckSubscription = Callable[[Scope, Any], dict[str, Any]]


@dataclass(frozen=True)
class Ports:
    event_log: EventLog
    owner_of: OwnerOf
    filter_matches: FilterMatches
    check_subscription: CheckSubscription
