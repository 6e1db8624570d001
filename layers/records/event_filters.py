"""A filter on events (webhook subscriptions, real-time subscriptions): the search filter of the one kind of
record the event types are about, checked by that record's search."""
from __future__ import annotations

from layers.db.uow import UnitOfWork
from layers.records.search import FilterGroup
from layers.records.service import RecordService, object_types, service_for
from shared.errors import ValidationFailed
from shared.event_patterns import object_prefixes


def record_services_by_event_name() -> dict[str, RecordService]:
    """Record services by their events' object name (`contact` → the contacts service)."""
    found = {}
    for object_type in object_types():
        service = service_for(object_type)
        if service is not None:
            found[service.spec.event_name] = service
    return found


def check_event_filter(uow: UnitOfWork, event_types: list[str], groups: list[FilterGroup]) -> str:
    """The object type (plural) the filter is about, after its search checked it; 422 under `filter` otherwise."""
    prefixes = object_prefixes(event_types)
    services = record_services_by_event_name()
    if len(prefixes) != 1 or next(iter(prefixes)) not in services:
        raise ValidationFailed("a filter needs event types about one kind of record", errors=[{
            "field": "filter", "code": "invalid",
            "message": f"event types must all be about one of {sorted(services)} (e.g. `contact.*`) to use a filter",
        }])
    service = services[next(iter(prefixes))]
    try:
        service.check_filter(uow, groups)
    except ValidationFailed as invalid:  # the search names fields from its own body: put them under `filter`
        raise ValidationFailed(invalid.detail, errors=[
            {**e, "field": f"filter.{e.get('field')}" if e.get("field") else "filter"} for e in invalid.errors or []
        ] or [{"field": "filter", "message": invalid.detail, "code": "invalid"}]) from None
    return service.spec.object_type
