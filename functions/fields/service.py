"""Custom field definitions: define, edit, archive and restore them; `definitions_for` is the port the
records layer asks (wired in app.py), so record writes validate values against them.

A definition's constraints hold for every live record: making a field required or unique, restoring
one, or removing a select option some record uses answers 409 with how many records are in the way,
rather than leaving records that break the rule or silently dropping their values.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy.exc import IntegrityError

from functions.fields import repository, rules
from functions.fields.models import FieldDefinition
from functions.fields.schemas import FieldCreate, FieldRead, FieldUpdate
from layers.db.uow import UnitOfWork
from layers.http.requests import page_json
from layers.queue.outbox import emit
from layers.records import custom
from layers.records.custom import CustomObject, FieldDef
from layers.records.service import RecordView
from shared.clock import utcnow
from shared.context import Scope
from shared.cursors import id_page, id_position
from shared.errors import Conflict, NotFound, UniqueConflict, ValidationFailed
from shared.ids import new_id
from shared.settings import get_settings


def definitions_for(uow: UnitOfWork, object_type: str) -> list[FieldDef]:
    """Every definition of the object type in the caller's workspace, archived ones included (their
    stored values stay readable, but cannot be written)."""
    return [_field_def(row) for row in repository.all_for_object(uow, object_type)]


# ---- reads ------------------------------------------------------------------------------------------
def list_fields(
    scope: Scope, *, object_type: str | None, include_archived: bool, limit: int, cursor: str | None
) -> str:
    secret = get_settings().cursor_secret
    query = f"{object_type}|{include_archived}"
    after = id_position(cursor, secret, query=query, direction="after")
    with UnitOfWork(scope) as uow:
        rows = repository.page(uow, object_type=object_type, include_archived=include_archived, after_id=after,
                               limit=limit)
    rows, next_cursor = id_page(rows, limit=limit, secret=secret, query=query, direction="after")
    return page_json((_dump(row) for row in rows), next_cursor)


def get_field(scope: Scope, field_id: str, *, include_archived: bool = False) -> RecordView:
    with UnitOfWork(scope) as uow:
        return _view(_load(uow, field_id, include_archived=include_archived))


# ---- writes -----------------------------------------------------------------------------------------
def create_field(scope: Scope, data: FieldCreate) -> RecordView:
    target = _object(data.object_type)
    rules.check_key_free(data.key, target.builtin_names)
    rules.check_shape(field_type=data.type, unique=data.unique, options=data.options)
    with UnitOfWork(scope) as uow:
        existing = repository.by_key(uow, data.object_type, data.key)
        if existing is not None:  # archived ones too: restore it rather than shadow its stored values
            raise UniqueConflict(field="key", value=data.key, existing_id=existing.id)
        if repository.count_for_object(uow, data.object_type) >= rules.MAX_FIELDS_PER_OBJECT:
            raise Conflict(f"{data.object_type} already has {rules.MAX_FIELDS_PER_OBJECT} custom fields "
                           "(archived ones count)", errors=[{"field": "object_type", "message": "too many fields",
                                                            "code": "limit"}])
        now = utcnow()
        row = FieldDefinition(
            id=new_id(), object_type=data.object_type, key=data.key, label=data.label, type=data.type,
            required=data.required, unique_values=data.unique, options=list(data.options),
            description=data.description, created_at=now, updated_at=now)
        if data.required:
            _require_values(uow, target, _field_def(row), "required")
        try:
            with uow.savepoint():  # a concurrent create of the same key fails here
                uow.session.add(row)
        except IntegrityError:
            holder = repository.by_key(uow, data.object_type, data.key)
            raise UniqueConflict(field="key", value=data.key, existing_id=holder.id if holder else "") from None
        view = _view(row)
        emit(uow, event_type="field.created", object_type="fields", record_id=row.id,
             data={"object": json.loads(view.body)})
        uow.commit()
    return view


def update_field(
    scope: Scope, field_id: str, data: FieldUpdate, *, expected_version: int | None = None
) -> RecordView:
    """Edit a definition (archived ones too: an admin may relax a field before restoring it)."""
    changes = data.model_dump(exclude_unset=True)
    rules.check_no_nulls(changes)
    with UnitOfWork(scope) as uow:
        row = _load(uow, field_id, include_archived=True, expected_version=expected_version)
        rules.check_immutable({"object_type": row.object_type, "key": row.key, "type": row.type}, changes)
        for name in rules.IMMUTABLE:
            changes.pop(name, None)
        before = _state(row)
        after = {**before, **changes}
        rules.check_shape(field_type=row.type, unique=after["unique"], options=after["options"])
        changed = {k: v for k, v in after.items() if v != before[k]}
        if not changed:
            return _view(row)
        target = _object(row.object_type)
        definition = _field_def(row, required=after["required"], unique=after["unique"],
                                options=tuple(after["options"]))
        removed = rules.removed_options(before["options"], after["options"])
        if removed:
            _options_unused(uow, target, definition, removed)
        if row.archived_at is None:  # an archived field is checked when it is restored
            if after["required"] and not before["required"]:
                _require_values(uow, target, definition, "required")
            if after["unique"] and not before["unique"]:
                _claim_values(uow, target, definition)
            elif before["unique"] and not after["unique"]:
                custom.release_field_values(uow, row.id)
        for name, value in changed.items():
            setattr(row, "unique_values" if name == "unique" else name, value)
        _save(uow, row, "field.updated",
              changes={k: {"old": before[k], "new": v} for k, v in changed.items()})
        view = _view(row)
        uow.commit()
    return view


def archive_field(scope: Scope, field_id: str, *, expected_version: int | None = None) -> None:
    """Archive (never delete): values stay stored and returned, but cannot be written; unique values
    are released, so nothing is held for a field no one can write."""
    with UnitOfWork(scope) as uow:
        row = _load(uow, field_id, include_archived=True, expected_version=expected_version)
        if row.archived_at is not None:  # archiving twice is a no-op, so retries are safe
            return
        row.archived_at = utcnow()
        if row.unique_values:
            custom.release_field_values(uow, row.id)
        _save(uow, row, "field.archived")
        uow.commit()


def restore_field(scope: Scope, field_id: str) -> RecordView:
    """Make an archived field writable again; its rules must hold for today's records (records
    created or restored meanwhile may lack the value or share it): 409 with how many otherwise."""
    with UnitOfWork(scope) as uow:
        row = _load(uow, field_id, include_archived=True)
        if row.archived_at is not None:
            target = _object(row.object_type)
            definition = _field_def(row, archived=False)
            if row.required:
                _require_values(uow, target, definition, "required")
            if row.unique_values:
                _claim_values(uow, target, definition)
            row.archived_at = None
            _save(uow, row, "field.restored")
        view = _view(row)
        uow.commit()
    return view


# ---- helpers ----------------------------------------------------------------------------------------
def _object(object_type: str) -> CustomObject:
    target = custom.custom_object(object_type)
    if target is None:  # e.g. deals before that capability takes custom fields
        raise ValidationFailed(f"{object_type} records do not take custom fields", errors=[
            {"field": "object_type", "message": "does not take custom fields", "code": "enum"}])
    return target


def _load(
    uow: UnitOfWork, field_id: str, *, include_archived: bool, expected_version: int | None = None
) -> FieldDefinition:
    row = repository.get(uow, field_id)
    if row is None or (row.archived_at is not None and not include_archived):
        raise NotFound(f"no custom field with id {field_id}")
    uow.require_version(row, expected_version, "field")
    return row


def _state(row: FieldDefinition) -> dict[str, Any]:
    return {"label": row.label, "required": row.required, "unique": row.unique_values,
            "options": list(row.options or []), "description": row.description}


def _field_def(row: FieldDefinition, **overrides: Any) -> FieldDef:
    values: dict[str, Any] = {
        "id": row.id, "key": row.key, "type": row.type, "required": row.required, "unique": row.unique_values,
        "options": tuple(row.options or ()), "archived": row.archived_at is not None}
    return FieldDef(**{**values, **overrides})


def _require_values(uow: UnitOfWork, target: CustomObject, definition: FieldDef, field: str) -> None:
    missing = repository.count_without_value(uow, target.model, definition)
    if missing:
        raise _in_the_way(missing, target.object_type, field,
                          f"{missing} {target.object_type} have no value for {definition.key}; fill them in first")


def _claim_values(uow: UnitOfWork, target: CustomObject, definition: FieldDef) -> None:
    # SQL finds the common case without loading records; the claim compares exactly as writes will.
    shared = repository.count_sharing_a_value(uow, target.model, definition) or \
        custom.claim_field_values(uow, target.object_type, definition)
    if shared:
        raise _in_the_way(shared, target.object_type, "unique",
                          f"{shared} {target.object_type} share a value of {definition.key} with another; "
                          "make them distinct first")


def _options_unused(uow: UnitOfWork, target: CustomObject, definition: FieldDef, removed: list[str]) -> None:
    using = repository.count_using_options(uow, target.model, definition, removed)
    if using:
        raise _in_the_way(using, target.object_type, "options",
                          f"{using} {target.object_type} (archived ones included) use "
                          f"{', '.join(map(repr, removed))}; change their values before removing the option")


def _in_the_way(count: int, object_type: str, field: str, detail: str) -> Conflict:
    return Conflict(detail, errors=[{"field": field, "message": detail, "code": "records_in_the_way"}],
                    extra={"count": count, "object_type": object_type})


def _save(uow: UnitOfWork, row: FieldDefinition, event: str, *, changes: dict[str, Any] | None = None) -> None:
    row.updated_at = utcnow()
    uow.flush("field")  # the version column bumps here; a concurrent edit makes this fail
    custom.forget_definitions(uow)
    data: dict[str, Any] = {"object": json.loads(_dump(row))}
    if changes is not None:
        data["changes"] = changes
    emit(uow, event_type=event, object_type="fields", record_id=row.id, data=data)


def _dump(row: FieldDefinition) -> str:
    return FieldRead.model_validate(row).model_dump_json()


def _view(row: FieldDefinition) -> RecordView:
    return RecordView(row.id, row.version or 1, row.archived_at is not None, _dump(row))
