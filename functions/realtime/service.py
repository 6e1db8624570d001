"""Real-time use cases: a record's viewers, and the ports the real-time tier fills from here.

The real-time layer may not import capabilities; tiers/realtime.py hands it these functions: the check of a
`subscribe` request (the same pattern and filter rules as webhooks), a record's current owner (for
visibility) and whether a record matches filter groups now.
"""
from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from functions.realtime.schemas import SubscriptionCreate, ViewerPage, ViewerRead, applied
from layers.db.base import OwnedMixin
from layers.db.uow import UnitOfWork
from layers.http.problems import validation_failed
from layers.realtime import presence
from layers.realtime.ports import Owner
from layers.records.event_filters import check_event_filter
from layers.records.search import FilterGroup
from layers.records.service import service_for
from shared.context import Scope, system_scope
from shared.errors import NotFound, ValidationFailed
from shared.ids import is_valid_id, new_id

_groups = TypeAdapter(list[FilterGroup])


def list_viewers(scope: Scope, *, object_type: str, record_id: str) -> ViewerPage:
    """People with the record open now; 404 unless the record exists and the caller may see it."""
    service = service_for(object_type)
    if service is None or not is_valid_id(record_id):
        raise NotFound(f"no {object_type} record {record_id[:40]}")
    service.get(scope, record_id)  # the record's own 404 (missing, archived, or outside the caller's view)
    return ViewerPage(data=[ViewerRead(**v) for v in presence.viewers(scope.workspace_id, object_type, record_id)])


def check_subscription(scope: Scope, raw: Any) -> dict[str, Any]:
    """A socket's `subscribe` payload as applied, or a 422 naming what is wrong."""
    try:
        data = SubscriptionCreate.model_validate(raw if raw is not None else {})
    except ValidationError as invalid:
        raise validation_failed(invalid) from None
    for ref in data.records or []:
        object_type = ref.split("/", 1)[0]
        service = service_for(object_type)
        if service is None or service.spec.object_type != object_type:
            raise ValidationFailed(f"records: {object_type!r} is not a record type", errors=[
                {"field": "records", "message": f"{ref!r} names no record type (`contacts/<id>`)", "code": "invalid"}])
    filter_object_type = None
    if data.filter:
        with UnitOfWork(scope) as uow:
            filter_object_type = check_event_filter(uow, data.event_types, data.filter)
    return applied(data, subscription_id=data.id or new_id(), filter_object_type=filter_object_type)


def owner_of(workspace_id: str, object_type: str, record_id: str) -> Owner:
    """A record's owner now; objects that have none are visible to every member."""
    service = service_for(object_type)
    if service is None or not issubclass(service.spec.model, OwnedMixin):
        return Owner(owned=False)
    if not is_valid_id(record_id):
        return Owner(owned=True, exists=False)
    with UnitOfWork(system_scope(workspace_id, source="realtime")) as uow:
        row = uow.session.get(service.spec.model, record_id)
        if row is None:
            return Owner(owned=True, exists=False)
        return Owner(owned=True, owner_id=row.owner_id)  # type: ignore[attr-defined]


def filter_matches(workspace_id: str, object_type: str, record_id: str, groups: list[dict[str, Any]]) -> bool:
    service = service_for(object_type)
    if service is None:
        return False
    with UnitOfWork(system_scope(workspace_id, source="realtime")) as uow:
        return service.matches(uow, record_id, _groups.validate_python(groups))
