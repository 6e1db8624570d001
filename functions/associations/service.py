"""Associations: labelled links between records of two object types.

Other capabilities register their record services here (`register_object_type`), so this module
imports none of them; it resolves and filters records through their models, inside the caller's
unit of work — so tenancy, archive and record-level visibility apply to both ends of every link.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, func, or_, select, union, union_all, update

from functions.associations.models import Association
from functions.associations.schemas import LINKABLE, BatchArchiveInput, BatchCreateInput
from layers.db.uow import UnitOfWork
from layers.http.problems import at_input, problem_body
from layers.http.requests import page_json, validate
from layers.queue.outbox import emit
from shared.clock import isoformat, utcnow
from shared.context import Scope
from shared.cursors import decode_cursor_for, encode_cursor
from shared.errors import AppError, NotFound, ValidationFailed
from shared.ids import new_id
from shared.objects import object_type_hint, unknown_object_type
from shared.settings import get_settings

_registry: dict[str, Any] = {}  # object type → its RecordService


def register_object_type(object_type: str, service: Any) -> None:
    _registry[object_type] = service


def object_types() -> list[str]:
    return sorted(_registry)


def record_service(object_type: str) -> Any | None:
    """The RecordService registered for `object_type` (None when that capability is not composed in)."""
    return _registry.get(object_type)


@dataclass(frozen=True)
class Link:
    """One side's view of an association: the other record, its type, label and primary flag."""

    id: str
    other_type: str
    other_id: str
    label: str
    is_primary: bool
    created_at: Any


def _canonical(a_type: str, a_id: str, b_type: str, b_id: str) -> tuple[str, str, str, str]:
    return (a_type, a_id, b_type, b_id) if (a_type, a_id) <= (b_type, b_id) else (b_type, b_id, a_type, a_id)


def model_of(object_type: str) -> Any:
    service = _registry.get(object_type)
    if service is None:
        raise ValidationFailed(f"unknown object type {object_type!r}", errors=[
            {"field": "object_type", "message": f"one of {', '.join(object_types())}", "code": "enum"}])
    return service.spec.model


def ensure_visible(uow: UnitOfWork, object_type: str, record_id: str) -> None:
    """404 unless the record exists, is not archived and the caller may see it."""
    model = model_of(object_type)
    found = uow.session.scalar(select(model.id).where(model.id == record_id, model.archived_at.is_(None)))
    if found is None:
        raise NotFound(f"no {object_type} record {record_id}")


def link(
    uow: UnitOfWork, *, a_type: str, a_id: str, b_type: str, b_id: str, label: str = "", is_primary: bool = False
) -> Association:
    """Create the link (or return the existing one with the same label). Both records must be live."""
    if (a_type, a_id) == (b_type, b_id):
        raise ValidationFailed("a record cannot be associated with itself", errors=[
            {"field": "to_id", "message": "same record", "code": "invalid"}])
    ensure_visible(uow, a_type, a_id)
    ensure_visible(uow, b_type, b_id)
    from_type, from_id, to_type, to_id = _canonical(a_type, a_id, b_type, b_id)
    existing = _same_link(uow, from_type, from_id, to_type, to_id, label)
    if existing is not None:
        if is_primary and not existing.is_primary:
            _set_primary(uow, a_type, a_id, b_type, existing)
        return existing
    scope = uow.scope
    row = Association(id=new_id(), from_type=from_type, from_id=from_id, to_type=to_type, to_id=to_id,
                      label=label, is_primary=False, created_by=scope.actor.id if scope else "", created_at=utcnow())
    uow.session.add(row)
    uow.session.flush()
    if is_primary:
        _set_primary(uow, a_type, a_id, b_type, row)
    return row


def _same_link(
    uow: UnitOfWork, from_type: str, from_id: str, to_type: str, to_id: str, label: str
) -> Association | None:
    # Labels match case-insensitively everywhere (MariaDB's collation already does; SQLite would not).
    return uow.session.scalars(select(Association).where(
        Association.from_type == from_type, Association.from_id == from_id, Association.to_type == to_type,
        Association.to_id == to_id, func.lower(Association.label) == label.lower())).first()


def _set_primary(uow: UnitOfWork, a_type: str, a_id: str, b_type: str, row: Association) -> None:
    """One primary `b_type` link per `a` record (e.g. a deal's primary contact)."""
    for other in _rows_of(uow, a_type, a_id, b_type):
        if other.is_primary and other.id != row.id:
            other.is_primary = False
    row.is_primary = True
    uow.session.flush()


def unlink(uow: UnitOfWork, *, a_type: str, a_id: str, b_type: str, b_id: str, label: str | None = None) -> int:
    """Remove the link(s) between two records (one label, or every label). Returns how many."""
    from_type, from_id, to_type, to_id = _canonical(a_type, a_id, b_type, b_id)
    statement = delete(Association).where(
        Association.from_type == from_type, Association.from_id == from_id,
        Association.to_type == to_type, Association.to_id == to_id)
    if label is not None:
        statement = statement.where(func.lower(Association.label) == label.lower())
    return uow.session.execute(statement).rowcount  # type: ignore[attr-defined,no-any-return]


def _side(record_type: str, record_id: str, other_type: str) -> Any:
    return or_(
        and_(Association.from_type == record_type, Association.from_id == record_id,
             Association.to_type == other_type),
        and_(Association.to_type == record_type, Association.to_id == record_id,
             Association.from_type == other_type),
    )


def _rows_of(uow: UnitOfWork, record_type: str, record_id: str, other_type: str) -> list[Association]:
    return list(uow.session.scalars(select(Association).where(_side(record_type, record_id, other_type))))


def links_of(uow: UnitOfWork, record_type: str, record_id: str, other_type: str) -> list[Link]:
    """The record's links to live, visible records of `other_type` (archived ends are hidden, not lost)."""
    other = model_of(other_type)
    # Either end may be the record (the stored direction is canonical): match both.
    statement = (
        select(Association, other.id)
        .join(other, or_(
            and_(Association.from_type == record_type, Association.from_id == record_id,
                 Association.to_type == other_type, Association.to_id == other.id),
            and_(Association.to_type == record_type, Association.to_id == record_id,
                 Association.from_type == other_type, Association.from_id == other.id),
        ))
        .where(other.archived_at.is_(None))
        .order_by(Association.created_at, Association.id)
    )
    rows = uow.session.execute(statement)
    return [Link(a.id, other_type, oid, a.label, a.is_primary, a.created_at) for a, oid in rows]


def linked_ids(uow: UnitOfWork, record_type: str, record_id: str, other_type: str) -> list[str]:
    return [link.other_id for link in links_of(uow, record_type, record_id, other_type)]


def linked_ids_select(record_type: str, record_id: str, other_type: str) -> Any:
    """The ids of `other_type` records linked to the record, as a subquery (column `id`) to join in the
    caller's own query, so a record's links are not loaded into Python first (e.g. a timeline). The other
    end is not filtered here: the caller's query of that model applies archive and visibility."""
    return union(
        select(Association.to_id.label("id")).where(
            Association.from_type == record_type, Association.from_id == record_id, Association.to_type == other_type),
        select(Association.from_id.label("id")).where(
            Association.to_type == record_type, Association.to_id == record_id, Association.from_type == other_type),
    ).subquery()


def linked_ids_many(uow: UnitOfWork, record_type: str, record_ids: list[str], other_type: str) -> dict[str, list[str]]:
    """`linked_ids` for many records in one query: record id → ids of its live, visible `other_type` links."""
    if not record_ids:
        return {}
    other = model_of(other_type)
    # One index-friendly branch per stored direction (an OR across both would defeat the indexes).
    forward = (select(Association.from_id.label("record_id"), other.id.label("other_id"),
                      Association.created_at, Association.id)
               .join(other, other.id == Association.to_id)
               .where(Association.from_type == record_type, Association.from_id.in_(record_ids),
                      Association.to_type == other_type, other.archived_at.is_(None)))
    backward = (select(Association.to_id.label("record_id"), other.id.label("other_id"),
                       Association.created_at, Association.id)
                .join(other, other.id == Association.from_id)
                .where(Association.to_type == record_type, Association.to_id.in_(record_ids),
                       Association.from_type == other_type, other.archived_at.is_(None)))
    both = union_all(forward, backward).subquery()
    statement = select(both.c.record_id, both.c.other_id).order_by(both.c.created_at, both.c.id)
    found: dict[str, list[str]] = {}
    for record_id, other_id in uow.session.execute(statement):
        if other_id not in found.setdefault(record_id, []):
            found[record_id].append(other_id)
    return found


def links_of_many(uow: UnitOfWork, record_type: str, record_ids: list[str], other_type: str) -> dict[str, list[Link]]:
    """`links_of` for many records (a page of deals and their contacts, primary flags included).
    One query per stored direction: an OR across both made MariaDB scan the other table per link
    (40 ms for a board column instead of under 2)."""
    if not record_ids:
        return {}
    other = model_of(other_type)
    directions = (
        (Association.from_type, Association.from_id, Association.to_type, Association.to_id),
        (Association.to_type, Association.to_id, Association.from_type, Association.from_id),
    )
    rows: list[tuple[str, Association, str]] = []
    for own_type, own_id, their_type, their_id in directions:
        statement = (
            select(Association, own_id, other.id)
            .join(other, other.id == their_id)
            .where(own_type == record_type, own_id.in_(record_ids), their_type == other_type,
                   other.archived_at.is_(None))
        )
        rows.extend((record_id, row, other_id) for row, record_id, other_id in uow.session.execute(statement))
    rows.sort(key=lambda entry: (entry[1].created_at, entry[1].id))
    found: dict[str, list[Link]] = {}
    for record_id, row, other_id in rows:
        links = found.setdefault(record_id, [])
        if all(link.id != row.id for link in links):
            links.append(Link(row.id, other_type, other_id, row.label, row.is_primary, row.created_at))
    return found


def clear_primary(uow: UnitOfWork, *, a_type: str, a_id: str, b_type: str) -> None:
    """`a` has no primary `b_type` link any more (the links stay): a deal whose primary contact is unset."""
    for row in _rows_of(uow, a_type, a_id, b_type):
        if row.is_primary:
            row.is_primary = False
    uow.session.flush()


def _links_changed(uow: UnitOfWork, *records: tuple[str, str]) -> None:
    """Tell each record's service its links changed (deals and activities show links in their bodies)."""
    for object_type, record_id in dict.fromkeys(records):
        service = _registry.get(object_type)
        if service is not None and hasattr(service, "links_changed"):
            service.links_changed(uow, record_id)


def move_all(uow: UnitOfWork, *, record_type: str, from_id: str, to_id: str) -> list[dict[str, Any]]:
    """Re-point every link of `from_id` to `to_id` (a merge). Returns what moved, so it can be undone.
    Links the survivor already has are dropped from the merged record instead of duplicated."""
    moved: list[dict[str, Any]] = []
    rows = list(uow.session.scalars(select(Association).where(or_(
        and_(Association.from_type == record_type, Association.from_id == from_id),
        and_(Association.to_type == record_type, Association.to_id == from_id)))))
    for row in rows:
        if row.from_type == record_type and row.from_id == from_id:
            a_type, b_type, b_id = row.from_type, row.to_type, row.to_id
        else:
            a_type, b_type, b_id = row.to_type, row.from_type, row.from_id
        if (b_type, b_id) == (record_type, to_id):
            continue  # a link between the two merged records: keep it as it is
        f_type, f_id, t_type, t_id = _canonical(a_type, to_id, b_type, b_id)
        clash = _same_link(uow, f_type, f_id, t_type, t_id, row.label)
        # The survivor's own link replaces a dropped primary one (a deal keeps a primary contact).
        promoted = clash is not None and row.is_primary and not clash.is_primary
        moved.append({"id": row.id, "from_type": row.from_type, "from_id": row.from_id, "to_type": row.to_type,
                      "to_id": row.to_id, "label": row.label, "is_primary": row.is_primary,
                      "created_at": isoformat(row.created_at), "dropped": clash is not None,
                      "promoted_id": clash.id if clash is not None and promoted else None})
        if clash is not None:
            if promoted:
                clash.is_primary = True
            uow.session.delete(row)
        else:
            uow.session.execute(update(Association).where(Association.id == row.id).values(
                from_type=f_type, from_id=f_id, to_type=t_type, to_id=t_id))
    uow.session.flush()
    _links_changed(uow, *[(e["to_type"], e["to_id"]) if (e["from_type"], e["from_id"]) == (record_type, from_id)
                          else (e["from_type"], e["from_id"]) for e in moved])
    return moved


def forget_records(uow: UnitOfWork, *, record_type: str, record_ids: list[str]) -> int:
    """Delete every link of these records (they are being purged). The other ends already hid them
    (archived ends are not shown), so no other record's body changes. One statement per stored direction."""
    if not record_ids:
        return 0
    removed = 0
    for own_type, own_id in ((Association.from_type, Association.from_id), (Association.to_type, Association.to_id)):
        result = uow.session.execute(delete(Association).where(own_type == record_type, own_id.in_(record_ids))
                                     .execution_options(synchronize_session=False))
        removed += result.rowcount  # type: ignore[attr-defined]
    return removed


def restore_moved(uow: UnitOfWork, moved: list[dict[str, Any]]) -> None:
    """Undo `move_all`: put each moved link back where it was (re-creating dropped ones)."""
    for entry in moved:
        values = {k: entry[k] for k in ("from_type", "from_id", "to_type", "to_id", "label", "is_primary")}
        if entry.get("promoted_id"):
            promoted = uow.session.get(Association, entry["promoted_id"])
            if promoted is not None:
                promoted.is_primary = False
        row = uow.session.get(Association, entry["id"])
        if row is None:
            created_at = datetime.fromisoformat(entry["created_at"].replace("Z", "+00:00")) \
                if entry.get("created_at") else utcnow()
            uow.session.add(Association(id=entry["id"], created_at=created_at, created_by="merge-undo", **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
    uow.session.flush()
    _links_changed(uow, *[(e["from_type"], e["from_id"]) for e in moved], *[(e["to_type"], e["to_id"]) for e in moved])


# ---- the API's use cases (functions/associations/routes.py) ---------------------------------------------
# The record cache needs nothing from a link change: contact and company bodies do not show links, and
# the bodies that do (a deal's contact_ids, an activity's links) are never served from the cache (their
# services say why). A type that caches a body showing its links must drop it on these changes.
def _check_linkable(object_type: str, field: str) -> None:
    hint = object_type_hint(object_type)
    if hint in LINKABLE:
        raise ValidationFailed(f"{field}: {unknown_object_type(object_type, hint)}", errors=[
            {"field": field, "message": unknown_object_type(object_type, hint), "code": "object_type"}])
    if object_type not in LINKABLE:
        raise ValidationFailed(f"{field} must be one of {', '.join(LINKABLE)}", errors=[
            {"field": field, "message": f"one of {', '.join(LINKABLE)}", "code": "enum"}])
    model_of(object_type)  # 422 when that capability is not composed in


def _entry(row: Association, record_type: str, record_id: str) -> dict[str, Any]:
    """The row as seen from one of its ends: `to_*` is the other end."""
    if (row.from_type, row.from_id) == (record_type, record_id):
        other_type, other_id = row.to_type, row.to_id
    else:
        other_type, other_id = row.from_type, row.from_id
    return {"id": row.id, "to_object": other_type, "to_id": other_id, "label": row.label,
            "is_primary": row.is_primary, "created_at": isoformat(row.created_at)}


def _link_body(row: Association, a_type: str, a_id: str) -> dict[str, Any]:
    entry = _entry(row, a_type, a_id)
    return {"id": row.id, "from_object": a_type, "from_id": a_id, **{k: v for k, v in entry.items() if k != "id"}}


def list_associations(
    scope: Scope, *, object_type: str, record_id: str, to_object: str, limit: int, cursor: str | None
) -> str:
    """One record's live, visible links to `to_object` records, oldest first, cursor-paged. 404 when the
    record itself is archived or hidden: its links are hidden with it (and come back on restore)."""
    _check_linkable(to_object, "to_object")
    secret = get_settings().cursor_secret
    position = f"{object_type}:{record_id}:{to_object}"
    after = str(decode_cursor_for(cursor, secret, of=position).get("after", ""))
    with UnitOfWork(scope) as uow:
        ensure_visible(uow, object_type, record_id)
        other = model_of(to_object)
        # One index-friendly branch per stored direction; the other end's visibility comes from the session.
        branches = [
            select(Association.id, mine_other.label("other_id"), Association.label, Association.is_primary,
                   Association.created_at)
            .join(other, other.id == mine_other)
            .where(mine_type == object_type, mine_id == record_id, other_type == to_object,
                   other.archived_at.is_(None), Association.id > after)
            for mine_type, mine_id, other_type, mine_other in (
                (Association.from_type, Association.from_id, Association.to_type, Association.to_id),
                (Association.to_type, Association.to_id, Association.from_type, Association.from_id))
        ]
        both = union_all(*branches).subquery()
        rows = list(uow.session.execute(select(both).order_by(both.c.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    bodies = [json.dumps({"id": row.id, "to_object": to_object, "to_id": row.other_id, "label": row.label,
                          "is_primary": bool(row.is_primary), "created_at": isoformat(row.created_at)},
                         separators=(",", ":")) for row in rows]
    next_cursor = encode_cursor({"of": position, "after": rows[-1].id}, secret) if more else None
    return page_json(bodies, next_cursor)


def _associate(
    uow: UnitOfWork, *, a_type: str, a_id: str, b_type: str, b_id: str, label: str, is_primary: bool | None
) -> tuple[Association, bool]:
    """Link (idempotent per label); `is_primary` true/false sets or clears the primary flag, None leaves it."""
    _check_linkable(a_type, "from_object")
    _check_linkable(b_type, "to_object")
    if len(label) > 64:
        raise ValidationFailed("label is at most 64 characters", errors=[
            {"field": "label", "message": "at most 64 characters", "code": "string_too_long"}])
    existing = _same_link(uow, *_canonical(a_type, a_id, b_type, b_id), label)
    was_primary = existing.is_primary if existing is not None else False
    row = link(uow, a_type=a_type, a_id=a_id, b_type=b_type, b_id=b_id, label=label, is_primary=bool(is_primary))
    if is_primary is False and row.is_primary:
        row.is_primary = False
        uow.session.flush()
    created = existing is None
    body = _link_body(row, a_type, a_id)
    if created or row.is_primary != was_primary:
        emit(uow, event_type="association.created" if created else "association.updated",
             object_type="associations", record_id=row.id, data={"association": body})
        _links_changed(uow, (a_type, a_id), (b_type, b_id))
    return row, created


def _dissociate(uow: UnitOfWork, *, a_type: str, a_id: str, b_type: str, b_id: str, label: str | None) -> int:
    """Remove the link(s) between two live, visible records; removing what is not there is a no-op."""
    _check_linkable(a_type, "from_object")
    _check_linkable(b_type, "to_object")
    ensure_visible(uow, a_type, a_id)
    ensure_visible(uow, b_type, b_id)
    from_type, from_id, to_type, to_id = _canonical(a_type, a_id, b_type, b_id)
    statement = select(Association).where(
        Association.from_type == from_type, Association.from_id == from_id,
        Association.to_type == to_type, Association.to_id == to_id)
    if label is not None:
        statement = statement.where(func.lower(Association.label) == label.lower())
    rows = list(uow.session.scalars(statement))
    for row in rows:
        emit(uow, event_type="association.removed", object_type="associations", record_id=row.id,
             data={"association": _link_body(row, a_type, a_id)})
        uow.session.delete(row)
    uow.session.flush()
    if rows:
        _links_changed(uow, (a_type, a_id), (b_type, b_id))
    return len(rows)


def create_association(
    scope: Scope, *, object_type: str, record_id: str, to_object: str, to_id: str, label: str,
    is_primary: bool | None,
) -> tuple[str, bool]:
    """The link as seen from `record_id`, and whether it is new (False: it existed with that label)."""
    with UnitOfWork(scope) as uow:
        row, created = _associate(uow, a_type=object_type, a_id=record_id, b_type=to_object, b_id=to_id,
                                  label=label, is_primary=is_primary)
        body = json.dumps(_entry(row, object_type, record_id), separators=(",", ":"))
        uow.commit()
    return body, created


def remove_association(
    scope: Scope, *, object_type: str, record_id: str, to_object: str, to_id: str, label: str | None
) -> int:
    with UnitOfWork(scope) as uow:
        removed = _dissociate(uow, a_type=object_type, a_id=record_id, b_type=to_object, b_id=to_id, label=label)
        uow.commit()
    return removed


def batch(scope: Scope, operation: Literal["create", "archive"], inputs: list[Any]) -> tuple[int, str]:
    """Each input in its own savepoint (one bad input fails alone); 200 when all succeed, else 207."""
    results: list[dict[str, Any]] = []
    failed = False
    with UnitOfWork(scope) as uow:
        for index, raw in enumerate(inputs):
            try:
                with uow.savepoint():
                    results.append({"index": index, **_batch_one(uow, operation, raw, index)})
            except AppError as error:
                failed = True
                problem = problem_body(error, scope.request_id)
                if problem.get("errors"):
                    problem["errors"] = [at_input(e, index) for e in problem["errors"]]
                results.append({"index": index, "status": error.status, "outcome": "error", "problem": problem})
        uow.commit()
    return (207 if failed else 200), json.dumps({"results": results}, separators=(",", ":"))


def _batch_one(uow: UnitOfWork, operation: str, raw: Any, index: int) -> dict[str, Any]:
    if operation == "create":
        item = validate(BatchCreateInput, raw, prefix=("inputs", index))
        row, created = _associate(uow, a_type=item.from_object, a_id=item.from_id, b_type=item.to_object,
                                  b_id=item.to_id, label=item.label, is_primary=item.is_primary or None)
        return {"status": 201 if created else 200, "outcome": "created" if created else "existing",
                "association": _link_body(row, item.from_object, item.from_id)}
    gone = validate(BatchArchiveInput, raw, prefix=("inputs", index))
    removed = _dissociate(uow, a_type=gone.from_object, a_id=gone.from_id, b_type=gone.to_object, b_id=gone.to_id,
                          label=gone.label)
    return {"status": 200, "outcome": "removed", "removed": removed}


