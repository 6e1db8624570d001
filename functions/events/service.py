"""Reading the event log: outbox events the relay has numbered, by sequence, for one workspace."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from functions.events.schemas import EventsQuery
from layers.db.uow import UnitOfWork
from layers.http.requests import page_json
from layers.queue.outbox import EventSequence, OutboxEvent, event_body
from layers.records.properties import LIKE_ESCAPE, escape_like
from shared.context import Scope, system_scope
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import Forbidden, Gone, NotFound, ValidationFailed
from shared.settings import get_settings


def list_events(*, scope: Scope, query: EventsQuery) -> str:
    _check_unrestricted(scope)
    secret = get_settings().cursor_secret
    after = _position(query.after, secret)
    with UnitOfWork(scope) as uow:
        if after > 0:
            _check_retained(uow, after)
        statement = (
            select(OutboxEvent)
            .where(OutboxEvent.kind == "event", OutboxEvent.sequence > after)
            .order_by(OutboxEvent.sequence)
            .limit(query.limit + 1)
        )
        matched = _types_condition(query.type_list())
        if matched is not None:
            statement = statement.where(matched)
        rows = list(uow.session.scalars(statement))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    last = rows[-1].sequence if rows else after
    body = page_json([json.dumps(event_body(r), separators=(",", ":"), default=str) for r in rows],
                     encode_cursor({"after": last}, secret))
    return body[:-1] + f',"has_more":{"true" if more else "false"}}}'


def get_event(*, scope: Scope, event_id: str) -> dict[str, Any]:
    _check_unrestricted(scope)
    with UnitOfWork(scope) as uow:
        row = uow.session.scalars(select(OutboxEvent).where(
            OutboxEvent.id == event_id, OutboxEvent.kind == "event", OutboxEvent.sequence.is_not(None))).first()
        if row is None:
            raise NotFound(f"no event {event_id}")
        return event_body(row)


# ---- the event log as the real-time tier reads it (its EventLog port; any workspace, by sequence) ------------
def events_after(workspace_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` event bodies of the workspace with sequence > `after`, oldest first."""
    with UnitOfWork(system_scope(workspace_id, source="realtime")) as uow:
        rows = uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == "event", OutboxEvent.sequence > after)
            .order_by(OutboxEvent.sequence).limit(limit))
        return [event_body(row) for row in rows]


def oldest_sequence(workspace_id: str) -> int | None:
    with UnitOfWork(system_scope(workspace_id, source="realtime")) as uow:
        return uow.session.scalar(select(func.min(OutboxEvent.sequence)).where(OutboxEvent.sequence.is_not(None)))


def last_sequences(workspace_ids: list[str]) -> dict[str, int]:
    """The last sequence each workspace handed out (its relay's COMMIT made every one up to it readable)."""
    if not workspace_ids:
        return {}
    with UnitOfWork(unscoped=True) as uow:
        found = dict(uow.session.execute(select(EventSequence.workspace_id, EventSequence.last_sequence)
                                         .where(EventSequence.workspace_id.in_(workspace_ids))).tuples().all())
    return {w: int(found.get(w, 0)) for w in workspace_ids}


def _position(cursor: str | None, secret: str) -> int:
    if cursor is None:
        return 0
    position = decode_cursor(cursor, secret).get("after")
    if not isinstance(position, int) or position < 0:
        raise ValidationFailed("not an event log cursor", errors=[
            {"field": "after", "message": "not an event log cursor", "code": "invalid"}])
    return position


def _check_retained(uow: UnitOfWork, after: int) -> None:
    """A cursor older than what is kept would silently skip events: say so instead."""
    oldest = uow.session.scalar(select(func.min(OutboxEvent.sequence)).where(OutboxEvent.sequence.is_not(None)))
    if oldest is not None and after < oldest - 1:
        days = get_settings().event_retention_days
        raise Gone(f"events after this cursor are no longer kept (the log keeps {days} days); "
                   "start again without `after`")


def _types_condition(types: list[str]) -> ColumnElement[bool] | None:
    if not types or "*" in types:
        return None
    exact = [t for t in types if not t.endswith(".*")]
    prefixes = [t[:-1] for t in types if t.endswith(".*")]
    conditions: list[ColumnElement[bool]] = [OutboxEvent.event_type.like(escape_like(p) + "%", escape=LIKE_ESCAPE)
                                             for p in prefixes]
    if exact:
        conditions.append(OutboxEvent.event_type.in_(exact))
    return or_(*conditions)


def _check_unrestricted(scope: Scope) -> None:
    if scope.visible_owner_ids is not None:
        raise Forbidden("the event log shows every record's changes; members restricted to their own records "
                        "cannot read it")
