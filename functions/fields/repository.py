"""Queries of the fields capability: definitions, and the counts that guard a definition change.

The counts run in SQL on the records of the object type (the model the records layer registered
for it), inside the caller's unit of work, so tenancy applies; no record is loaded into Python.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from functions.fields.models import FieldDefinition
from layers.db.uow import UnitOfWork
from layers.records.custom import FieldDef, json_raw, json_text_exact, options_in_use, value_expression
from layers.records.properties import json_array_length


def get(uow: UnitOfWork, field_id: str) -> FieldDefinition | None:
    return uow.session.get(FieldDefinition, field_id)


def by_key(uow: UnitOfWork, object_type: str, key: str) -> FieldDefinition | None:
    return uow.session.scalars(select(FieldDefinition).where(
        FieldDefinition.object_type == object_type, FieldDefinition.key == key)).first()


def count_for_object(uow: UnitOfWork, object_type: str) -> int:
    return uow.session.scalar(select(func.count()).select_from(FieldDefinition).where(
        FieldDefinition.object_type == object_type)) or 0


def page(
    uow: UnitOfWork, *, object_type: str | None, include_archived: bool, after_id: str | None, limit: int
) -> list[FieldDefinition]:
    statement = select(FieldDefinition).order_by(FieldDefinition.id).limit(limit + 1)
    if object_type is not None:
        statement = statement.where(FieldDefinition.object_type == object_type)
    if not include_archived:
        statement = statement.where(FieldDefinition.archived_at.is_(None))
    if after_id is not None:
        statement = statement.where(FieldDefinition.id > after_id)
    return list(uow.session.scalars(statement))


def all_for_object(uow: UnitOfWork, object_type: str) -> list[FieldDefinition]:
    return list(uow.session.scalars(select(FieldDefinition).where(FieldDefinition.object_type == object_type)
                                    .order_by(FieldDefinition.id)))


def count_without_value(uow: UnitOfWork, model: Any, definition: FieldDef) -> int:
    """Live records that have no value for the field (what making it required would break)."""
    value = json_raw(model.custom, definition.key)
    missing: ColumnElement[bool] = value.is_(None)
    if definition.type == "multi_select":
        missing = or_(missing, json_array_length(value) == 0)
    return uow.session.scalar(select(func.count()).select_from(model).where(
        model.archived_at.is_(None), missing)) or 0


def count_sharing_a_value(uow: UnitOfWork, model: Any, definition: FieldDef) -> int:
    """Live records whose value another live record also has (what making it unique would break);
    equal as unique values compare: numbers by amount, the rest ignoring case."""
    if definition.type == "number":
        value: Any = value_expression(model, definition)
    else:
        value = func.lower(json_text_exact(model.custom, definition.key))
    groups = (select(func.count().label("n")).select_from(model)
              .where(model.archived_at.is_(None), value.is_not(None))
              .group_by(value).having(func.count() > 1).subquery())
    return int(uow.session.scalar(select(func.coalesce(func.sum(groups.c.n), 0))) or 0)  # SUM is a DECIMAL


def count_using_options(uow: UnitOfWork, model: Any, definition: FieldDef, options: list[str]) -> int:
    """Records, archived ones included (a restore brings their values back), holding any of `options`."""
    return uow.session.scalar(select(func.count()).select_from(model).where(
        options_in_use(model, definition, options))) or 0
