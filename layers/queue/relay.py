"""The outbox relay: committed outbox rows to the jobs and bulk queues, in order per workspace.

One pass, in one transaction:
1. find workspaces with unpublished rows, the longest waiting first, each workspace once however long its
   backlog (a bulk import's thousand events do not hide another workspace's rows);
2. lock their `event_sequences` rows with FOR UPDATE SKIP LOCKED — a workspace belongs to one relay
   at a time, so several relays run side by side without reordering a workspace's events;
3. read those workspaces' committed, unpublished rows — the jobs of the main lane first, wherever they
   stand (a job has no place in the event order, so an export asked for behind an import's events does
   not wait for them to be published), then each workspace's share of its rows in order — and give each
   event the workspace's next sequence;
4. publish (one message per job, one per event per consumer interested in the event's type) to the
   row's lane's queue (layers/queue/lanes.py), a job with its delay, and only then mark the rows sent and
   COMMIT. A relay killed before COMMIT leaves the rows unpublished: they are sent again with the
   same event/job ids, and consumers' receipts make the second copy a no-op;
5. after the COMMIT, hand the events just numbered (their `event_body`) to `announce` (the real-time
   tier's Redis channel). Never before: a pass that rolls back announces nothing. An announcement that
   fails, or is lost with the process, is only logged: the real-time tier heals from the event log.

A workspace's events keep their order whatever their lane, so an event of the main lane still waits for
the same workspace's earlier bulk events to be published (at ~batch_size rows per pass).
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from layers.db.uow import UnitOfWork
from layers.observability.metrics import OUTBOX_LAG, OUTBOX_PUBLISHED
from layers.queue.lanes import BULK, MAIN, Lane
from layers.queue.outbox import EventSequence, OutboxEvent, event_body, interested_consumers
from layers.queue.wakeup import Wakeup
from shared.clock import as_utc, utcnow

if TYPE_CHECKING:
    from layers.queue.sqs import Queues

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: its body, the lane whose queue takes it, and how long SQS should hide it."""

    body: str
    lane: Lane = MAIN
    delay_seconds: int = 0


Publisher = Callable[[Sequence[Outgoing]], None]  # raises unless every message was accepted
Announce = Callable[[Sequence[dict[str, Any]]], None]  # committed event bodies, in sequence order per workspace
Consumers = Callable[[Mapping[str, set[str]]], dict[str, set[tuple[str, str]]]]


class Relay:
    def __init__(self, publish: Publisher, *, batch_size: int = 200,
                 consumers: Consumers = interested_consumers, announce: Announce | None = None) -> None:
        """`consumers({workspace id: {event types}})`: each event consumer and the (workspace id, event
        type) pairs whose events it gets. `announce(events)`: told of each pass's events after its COMMIT."""
        self._publish = publish
        self._batch_size = batch_size
        self._consumers = consumers
        self._announce = announce

    def run_once(self) -> int:
        """Publish what is committed now; returns how many outbox rows were sent."""
        pending = self._pending_workspaces()
        if not pending:
            return 0
        self._ensure_sequences(pending)
        with UnitOfWork(unscoped=True) as uow:
            session = uow.session
            owned = list(session.scalars(
                select(EventSequence).where(EventSequence.workspace_id.in_(pending))
                .order_by(EventSequence.workspace_id).with_for_update(skip_locked=True)
            ))
            if not owned:
                return 0  # every pending workspace is another relay's right now
            # Plain reads, not locking ones: the sequence row lock above already makes these rows this
            # relay's alone, and a locking read would wait on rows open transactions are still inserting
            # (seen on MariaDB 10.11 even with SKIP LOCKED). Uncommitted rows are invisible.
            rows = self._rows(session, [o.workspace_id for o in owned])
            if not rows:
                return 0
            messages, events = self._number_and_render(rows, {o.workspace_id: o for o in owned})
            self._publish(messages)  # raises: nothing is marked, the transaction rolls back
            now = utcnow()
            for row in rows:
                row.published_at = now
                OUTBOX_LAG.observe(max(0.0, (now - as_utc(row.occurred_at)).total_seconds()))
            uow.commit()
        OUTBOX_PUBLISHED.inc(len(rows))
        if events and self._announce is not None:
            try:
                self._announce(events)
            except Exception:  # the events are committed and in the log: the real-time tier heals from it
                log.exception("announcing %d event(s) failed", len(events))
        return len(rows)

    def drain(self) -> int:
        total = 0
        while sent := self.run_once():
            total += sent
        return total

    def run_forever(self, stop: threading.Event, *, idle_seconds: float = 0.2, wakeup: Wakeup | None = None) -> None:
        """Pass after pass until `stop`; when idle, wait for a commit's nudge (or `idle_seconds`)."""
        while not stop.is_set():
            try:
                sent = self.run_once()
            except Exception:  # a database or SQS outage: log, back off, try again (nothing is lost)
                log.exception("outbox relay pass failed")
                sent = 0
                stop.wait(min(5.0, idle_seconds * 10))
            if not sent:
                if wakeup is not None:
                    wakeup.wait(idle_seconds)
                else:
                    stop.wait(idle_seconds)

    def _pending_workspaces(self) -> list[str]:
        with UnitOfWork(unscoped=True) as uow:
            return list(uow.session.scalars(
                select(OutboxEvent.workspace_id).where(OutboxEvent.published_at.is_(None))
                .group_by(OutboxEvent.workspace_id).order_by(func.min(OutboxEvent.id)).limit(self._batch_size)
            ))

    def _rows(self, session: Session, workspace_ids: list[str]) -> list[OutboxEvent]:
        """The main lane's pending jobs first, then up to an even share of each workspace's rows, in order."""
        pending = (OutboxEvent.published_at.is_(None), OutboxEvent.workspace_id.in_(workspace_ids))
        urgent = list(session.scalars(
            select(OutboxEvent).where(*pending, OutboxEvent.kind == "job", OutboxEvent.lane == MAIN)
            .order_by(OutboxEvent.id).limit(self._batch_size)))
        ranked = (select(OutboxEvent.id, func.row_number().over(
            partition_by=OutboxEvent.workspace_id, order_by=OutboxEvent.id).label("position"))
            .where(*pending).subquery())
        share = max(1, self._batch_size // len(workspace_ids))
        in_order = session.scalars(
            select(OutboxEvent).join(ranked, ranked.c.id == OutboxEvent.id).where(ranked.c.position <= share)
            .order_by(OutboxEvent.id))
        taken = {row.id for row in urgent}
        return urgent + [row for row in in_order if row.id not in taken]

    @staticmethod
    def _ensure_sequences(workspace_ids: list[str]) -> None:
        """Sequence rows are created in their own short transaction, so the lock step always finds them."""
        with UnitOfWork(unscoped=True) as uow:
            known = set(uow.session.scalars(
                select(EventSequence.workspace_id).where(EventSequence.workspace_id.in_(workspace_ids))))
            missing = [w for w in workspace_ids if w not in known]
            if not missing:
                return
            _insert_ignore(uow.session, [{"workspace_id": w, "last_sequence": 0} for w in missing])
            uow.commit()

    def _number_and_render(self, rows: list[OutboxEvent], sequences: dict[str, EventSequence]
                           ) -> tuple[list[Outgoing], list[dict[str, Any]]]:
        """The messages to publish, and the numbered events' bodies (for `announce`)."""
        pending: dict[str, set[str]] = {}
        for row in rows:
            if row.kind == "event":
                pending.setdefault(row.workspace_id, set()).add(row.event_type)
        consumers = self._consumers(pending) if pending else {}
        messages: list[Outgoing] = []
        events: list[dict[str, Any]] = []
        for row in rows:
            lane: Lane = BULK if row.lane == BULK else MAIN
            if row.kind == "job":
                messages.append(Outgoing(json.dumps(row.payload, separators=(",", ":"), default=str), lane,
                                         row.delay_seconds or 0))
                continue
            counter = sequences[row.workspace_id]
            counter.last_sequence += 1
            row.sequence = counter.last_sequence
            event = event_body(row)
            events.append(event)
            for consumer, wanted in consumers.items():
                if (row.workspace_id, row.event_type) not in wanted:
                    continue
                messages.append(Outgoing(json.dumps(
                    {"handler": consumer, "job_id": f"{row.id}:{consumer}", "payload": event},
                    separators=(",", ":"), default=str), lane))
        return messages, events


def _insert_ignore(session: Session, values: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    statement = insert(EventSequence)
    if dialect == "sqlite":
        statement = statement.prefix_with("OR IGNORE")
    else:
        statement = statement.prefix_with("IGNORE")
    session.execute(statement, values)


def sqs_publisher(queues: Queues) -> Publisher:
    """Publish to each lane's queue in batches of ten; any entry SQS did not accept fails the whole pass
    (it is retried)."""
    from layers.queue.sqs import sqs

    def publish(messages: Sequence[Outgoing]) -> None:
        client = sqs()
        by_queue: dict[str, list[Outgoing]] = {queue.url: [] for queue in queues.lanes()}  # the jobs queue first
        for message in messages:
            by_queue[queues.lane(message.lane).url].append(message)
        for queue_url, outgoing in by_queue.items():
            for start in range(0, len(outgoing), 10):
                chunk = outgoing[start:start + 10]
                reply = client.send_message_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(i), "MessageBody": m.body, "DelaySeconds": m.delay_seconds}
                    for i, m in enumerate(chunk)])
                if reply.get("Failed"):
                    raise RuntimeError(f"SQS refused {len(reply['Failed'])} message(s): {reply['Failed'][0]}")

    return publish

