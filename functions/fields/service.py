"""Custom field definitions; `definitions_for` is the port the records layer asks (wired in app.py)."""
from __future__ import annotations

from sqlalchemy import select

from functions.fields.models import FieldDefinition
from layers.db.uow import UnitOfWork
from layers.records.custom import FieldDef


def definitions_for(uow: UnitOfWork, object_type: str) -> list[FieldDef]:
    """Every definition of the object type in the caller's workspace, archived ones included (their
    stored values stay readable, but cannot be written)."""
    rows = uow.session.scalars(select(FieldDefinition).where(FieldDefinition.object_type == object_type))
    return [
        FieldDef(id=row.id, key=row.key, type=row.type, required=row.required, unique=row.unique_values,
                 options=tuple(row.options or ()), archived=row.archived_at is not None)
        for row in rows
    ]
