"""Associations: labelled links between records of two object types.

Other capabilities register their record services here (`register_object_type`), so this module
imports none of them; it resolves and filters records through their models, inside the caller's
unit of work — so tenancy, archive and record-level visibility apply to both ends of every link.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from functions.associations.models import Association
from layers.db.uow import UnitOfWork
from shared.clock import utcnow
from shared.errors import NotFound, ValidationFailed
from shared.ids import new_id

_registry: dict[str, Any] = {}  # object type → its RecordService


def register_object_type(object_type: str, service: Any) -> None:
    _registry[object_type] = service


def object_types() -> list[str]:
    return sorted(_registry)


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
    existing = uow.session.scalars(select(Association).where(
        Association.from_type == from_type, Association.from_id == from_id,
        Association.to_type == to_type, Association.to_id == to_id, Association.label == label)).first()
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
        statement = statement.where(Association.label == label)
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
        clash = uow.session.scalar(select(Association.id).where(
            Association.from_type == f_type, Association.from_id == f_id, Association.to_type == t_type,
            Association.to_id == t_id, Association.label == row.label))
        moved.append({"id": row.id, "from_type": row.from_type, "from_id": row.from_id, "to_type": row.to_type,
                      "to_id": row.to_id, "label": row.label, "is_primary": row.is_primary,
                      "dropped": clash is not None})
        if clash is not None:
            uow.session.delete(row)
        else:
            uow.session.execute(update(Association).where(Association.id == row.id).values(
                from_type=f_type, from_id=f_id, to_type=t_type, to_id=t_id))
    uow.session.flush()
    return moved


def restore_moved(uow: UnitOfWork, moved: list[dict[str, Any]]) -> None:
    """Undo `move_all`: put each moved link back where it was (re-creating dropped ones)."""
    for entry in moved:
        values = {k: entry[k] for k in ("from_type", "from_id", "to_type", "to_id", "label", "is_primary")}
        row = uow.session.get(Association, entry["id"])
        if row is None:
            uow.session.add(Association(id=entry["id"], created_at=utcnow(), created_by="merge-undo", **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
    uow.session.flush()
