"""Use cases every CRM object shares: get, list, search, create, update, archive, restore, history, batch.

A capability describes its object once (`ObjectSpec`) and gets all of them, each with tenancy,
history rows, outbox events, optimistic versions and the record cache handled the same way.
"""
from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from layers.cache import records as record_cache
from layers.db.base import OwnedMixin, RecordMixin
from layers.db.uow import UnitOfWork
from layers.http.problems import at_input, problem_body
from layers.http.requests import page_json, validate
from layers.queue.outbox import emit
from layers.records import custom
from layers.records.history import FieldHistory, history_entry, record_changes
from layers.records.owners import OwnedBy, owner_condition
from layers.records.properties import PropertySpec, text_match
from layers.records.search import (
    FilterGroup,
    SearchRequest,
    apply_keyset,
    describe,
    next_cursor,
    signature,
    sort_keys,
    where_clause,
)
from shared.clock import isoformat, utcnow
from shared.context import Scope
from shared.cursors import decode_cursor_for, encode_cursor
from shared.errors import AppError, Conflict, NotFound, UniqueConflict, ValidationFailed
from shared.ids import is_valid_id, new_id
from shared.settings import get_settings

ReferenceCheck = Callable[[UnitOfWork, dict[str, Any]], None]
BatchOperation = Literal["create", "update", "upsert", "archive"]
MAX_BATCH = 100


_services: dict[str, RecordService] = {}


def service_for(object_type: str) -> RecordService | None:
    """The record service of an object type, by its plural (`contacts`, as events name it) or singular
    (`contact`, as event types start) name, for layers that work on any object."""
    found = _services.get(object_type)
    if found is None:
        found = next((s for s in _services.values() if s.spec.event_name == object_type), None)
    return found


def object_types() -> list[str]:
    return sorted(_services)


@dataclass(frozen=True)
class ObjectSpec:
    object_type: str  # plural, as in the URL: "contacts"
    event_name: str  # singular, as in events: "contact"
    model: type[RecordMixin]
    read_schema: type[BaseModel]
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    properties: tuple[PropertySpec, ...]
    text_fields: tuple[str, ...]
    unique_field: str | None = None
    # The column the unique constraint is on: equal to the unique field, or NULL for a duplicate the
    # client explicitly allowed (so the constraint still guards every other record).
    unique_key: str | None = None
    check_references: ReferenceCheck | None = None  # other capabilities' records named by id
    custom_fields: bool = False  # the model has a `custom` JSON column and the schemas `custom_fields`

    @property
    def property_map(self) -> dict[str, PropertySpec]:
        return {p.name: p for p in self.properties}


@dataclass(frozen=True)
class RecordView:
    id: str
    version: int
    archived: bool
    body: str  # JSON, exactly as answered


@dataclass(frozen=True)
class BatchResult:
    """One input's result: `outcome` is created, updated, archived or error (then `error` says why)."""

    index: int
    status: int
    outcome: str
    view: RecordView | None = None
    error: AppError | None = None


@dataclass(frozen=True)
class BatchOutcome:
    status: int  # 200 when every input succeeded, 207 otherwise
    body: str


class RecordService:
    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self._properties = spec.property_map
        self._json_value = TypeAdapter(Any)
        self._page_adapter: TypeAdapter[Any] = TypeAdapter(builtins.list[spec.read_schema])  # type: ignore[name-defined]
        self._page_columns = [getattr(spec.model, attr.key) for attr in sa_inspect(spec.model).column_attrs]
        if spec.custom_fields:
            custom.register_object(spec)  # the fields capability defines fields for registered objects only
        _services[spec.object_type] = self

    # ---- reads -------------------------------------------------------------------------------------
    def get(self, scope: Scope, record_id: str, *, include_archived: bool = False) -> RecordView:
        cached = record_cache.get(scope.workspace_id, self.spec.object_type, record_id)
        if cached is not None:
            if (cached.archived and not include_archived) or not self._visible(scope, cached.body):
                raise self._not_found(record_id)
            return RecordView(record_id, cached.version, cached.archived, cached.body)
        epoch = record_cache.epoch()  # before the read: a write committed after it moves the epoch past this
        with UnitOfWork(scope) as uow:
            row = uow.session.get(self.spec.model, record_id)
            if row is None:
                raise self._not_found(record_id)
            view = self._view(row)
        record_cache.fill(scope.workspace_id, self.spec.object_type, record_id, _cached(view), epoch=epoch)
        if view.archived and not include_archived:
            raise self._not_found(record_id)
        return view

    def list(  # the service verb STYLE.md names
        self, scope: Scope, *, limit: int = 50, cursor: str | None = None, include_archived: bool = False,
        where: tuple[ColumnElement[bool], ...] = (), owned_by: OwnedBy | None = None,
    ) -> str:
        request = SearchRequest(limit=limit, cursor=cursor, include_archived=include_archived, owned_by=owned_by)
        return self.search(scope, request, where=where)

    def matches(self, uow: UnitOfWork, record_id: str, groups: builtins.list[FilterGroup]) -> bool:
        """Does the record match these filter groups now? The search language's own SQL decides, so a
        webhook or automation filter means exactly what the same search would."""
        model = self.spec.model
        properties = self._filter_properties(uow, groups)
        statement = select(model.id).where(model.id == record_id)
        condition = where_clause(groups, properties, model)
        if condition is not None:
            statement = statement.where(condition)
        return uow.session.execute(statement.limit(1)).first() is not None

    def check_filter(self, uow: UnitOfWork, groups: builtins.list[FilterGroup]) -> None:
        """Raise the search's own 422 for unknown properties or operators (at registration time)."""
        where_clause(groups, self._filter_properties(uow, groups), self.spec.model)

    def _filter_properties(self, uow: UnitOfWork, groups: builtins.list[FilterGroup]) -> dict[str, PropertySpec]:
        properties = self._properties
        if self.spec.custom_fields and any(f.property.startswith("custom_fields.") for g in groups for f in g.filters):
            properties = {**properties, **{p.name: p for p in custom.search_properties(
                uow, self.spec.object_type, self.spec.model)}}
        return properties

    def search(self, scope: Scope, request: SearchRequest, *, where: tuple[ColumnElement[bool], ...] = ()) -> str:
        with UnitOfWork(scope) as uow:
            return self._search(uow, request, where)

    def _search(self, uow: UnitOfWork, request: SearchRequest, where: tuple[ColumnElement[bool], ...]) -> str:
        model = self.spec.model
        properties = self._properties
        if self.spec.custom_fields and _names_custom(request):
            properties = {**properties, **{p.name: p for p in custom.search_properties(
                uow, self.spec.object_type, model)}}
        keys = sort_keys(request.sorts, properties, model)
        # The bound values matter too: a cursor from one company's contacts must not page another's.
        sig = signature(keys, describe(request) + repr([(str(w), sorted(w.compile().params.items())) for w in where]))
        # Plain rows (ORM columns, so tenancy and visibility criteria still apply) unless the capability
        # renders records itself: building 50 tracked entities was a third of a list request.
        plain = self._renders_plain_rows()
        statement = select(*self._page_columns) if plain else select(model)
        condition = where_clause(request.filter_groups, properties, model)
        if condition is not None:
            statement = statement.where(condition)
        for extra in where:
            statement = statement.where(extra)
        if request.owned_by is not None:
            statement = statement.where(owner_condition(uow, model, request.owned_by, field="owned_by"))
        if not request.include_archived:
            statement = statement.where(model.archived_at.is_(None))
        secret = get_settings().cursor_secret
        if request.query:
            dialect = uow.session.get_bind().dialect.name
            columns = [getattr(model, name) for name in self.spec.text_fields]
            matched = text_match(columns, request.query, dialect)
            if matched is not None:
                statement = statement.where(matched)
        statement = apply_keyset(statement, keys, request.cursor, secret, sig, request.limit)
        rows = list(uow.session.execute(statement) if plain else uow.session.scalars(statement))
        rows, cursor = next_cursor(rows, keys, request.limit, secret, sig)
        return page_json(self._dump_page(rows), cursor)

    def history(self, scope: Scope, record_id: str, *, limit: int = 50, cursor: str | None = None) -> str:
        secret = get_settings().cursor_secret
        with UnitOfWork(scope) as uow:
            if uow.session.get(self.spec.model, record_id) is None:
                raise self._not_found(record_id)
            statement = (
                select(FieldHistory)
                .where(FieldHistory.object_type == self.spec.object_type, FieldHistory.record_id == record_id)
                .order_by(FieldHistory.id.desc())
                .limit(limit + 1)
            )
            if cursor is not None:
                position = decode_cursor_for(cursor, secret, record=record_id)
                statement = statement.where(FieldHistory.id < str(position.get("before", "")))
            rows = list(uow.session.scalars(statement))
        more = len(rows) > limit
        rows = rows[:limit]
        bodies = [json.dumps(history_entry(row), separators=(",", ":")) for row in rows]
        return page_json(bodies, encode_cursor({"before": rows[-1].id, "record": record_id}, secret) if more else None)

    # ---- writes ------------------------------------------------------------------------------------
    def create(self, scope: Scope, data: BaseModel, *, allow_duplicate: bool = False) -> RecordView:
        with UnitOfWork(scope) as uow:
            view = self._create(uow, data.model_dump(), allow_duplicate=allow_duplicate)
            uow.commit()
        return view

    def update(
        self, scope: Scope, record_id: str, data: BaseModel, *, expected_version: int | None = None
    ) -> RecordView:
        with UnitOfWork(scope) as uow:
            view = self._update(uow, record_id, data.model_dump(exclude_unset=True), expected_version)
            uow.commit()
        return view

    def archive(self, scope: Scope, record_id: str, *, expected_version: int | None = None) -> None:
        with UnitOfWork(scope) as uow:
            self._archive(uow, record_id, expected_version)
            uow.commit()

    def restore(self, scope: Scope, record_id: str) -> RecordView:
        with UnitOfWork(scope) as uow:
            row = self._load(uow, record_id)
            if row.archived_at is not None:
                self._change(uow, row, {"archived_at": None}, action="restored", event="restored")
                if self.spec.custom_fields:
                    custom.claim_unique_values(uow, self.spec.object_type, row.id, row.custom)  # type: ignore[attr-defined]
                self._after_write(uow, row, "restored", {})
            view = self._view(row)
            uow.commit()
        return view

    def batch(
        self, scope: Scope, operation: BatchOperation, inputs: builtins.list[Any], *, allow_duplicate: bool = False
    ) -> BatchOutcome:
        """Each input in its own savepoint: one bad input fails alone; the rest commit together."""
        results: builtins.list[str] = []  # `list` is a method name in this class
        failed = False
        with UnitOfWork(scope) as uow:
            for result in self.batch_in(uow, operation, inputs, allow_duplicate=allow_duplicate):
                index, error = result.index, result.error
                if error is None:
                    record = result.view.body if result.view is not None else "null"
                    results.append(f'{{"index":{index},"status":{result.status},"outcome":"{result.outcome}",'
                                   f'"record":{record}}}')
                    continue
                failed = True
                body = problem_body(error, scope.request_id)
                if body.get("errors"):  # rule checks name bare fields; a batch names them per input
                    body["errors"] = [at_input(e, index) for e in body["errors"]]
                problem = json.dumps(body, separators=(",", ":"))
                results.append(f'{{"index":{index},"status":{error.status},"outcome":"error","problem":{problem}}}')
            uow.commit()
        return BatchOutcome(207 if failed else 200, '{"results":[' + ",".join(results) + "]}")

    def batch_in(
        self, uow: UnitOfWork, operation: BatchOperation, inputs: builtins.list[Any], *, allow_duplicate: bool = False
    ) -> builtins.list[BatchResult]:
        """The batch inside the caller's unit of work (imports run it per chunk): each input in its own
        savepoint, so a failed one is undone alone; the caller commits the rest."""
        run = {"create": self._batch_create, "update": self._batch_update,
               "upsert": self._batch_upsert, "archive": self._batch_archive}[operation]
        if operation == "create" and allow_duplicate:
            run = self._batch_create_duplicates
        results: builtins.list[BatchResult] = []
        raw: Any
        for index, raw in enumerate(inputs):
            try:
                with uow.savepoint():
                    outcome, status, view = run(uow, raw, index)
                results.append(BatchResult(index, status, outcome, view))
            except AppError as error:
                results.append(BatchResult(index, error.status, "error", None, error))
        return results

    # ---- the steps, inside a unit of work -----------------------------------------------------------
    def _create(self, uow: UnitOfWork, values: dict[str, Any], *, allow_duplicate: bool = False) -> RecordView:
        model, scope = self.spec.model, uow.scope
        assert scope is not None
        values = dict(values)
        if isinstance(model, type) and issubclass(model, OwnedMixin):
            self._check_owner_visible(scope, values, creating=True)
        # No look-up before the insert: the unique constraint decides, and _flush_new turns its
        # IntegrityError into a 409 naming the existing record (one query less on every create).
        if self.spec.check_references:
            self.spec.check_references(uow, values)
        self._before_create(uow, values)
        record_id = new_id()
        columns = self._columns(uow, values, creating=True, current_custom=None)
        if self.spec.unique_key and not allow_duplicate:
            columns[self.spec.unique_key] = values.get(self.spec.unique_field or "")
        now = utcnow()
        row = model(id=record_id, workspace_id=scope.workspace_id, created_at=now, updated_at=now,  # type: ignore[call-arg]
                    **columns)
        self._flush_new(uow, row, values)
        if self.spec.custom_fields:
            custom.claim_unique_values(uow, self.spec.object_type, row.id, row.custom)  # type: ignore[attr-defined]
        self._after_write(uow, row, "created", {})
        changes = {k: (None, self._plain(v)) for k, v in values.items()
                   if v not in (None, [], "", {}) and k != "custom_fields"}
        changes.update({f"custom_fields.{k}": (None, v) for k, v in (columns.get("custom") or {}).items()})
        record_changes(uow, object_type=self.spec.object_type, record_id=row.id, action="created",
                       changes=changes, at=now)
        view = self._view(row)
        emit(uow, event_type=f"{self.spec.event_name}.created", object_type=self.spec.object_type,
             record_id=row.id, data={"object": json.loads(view.body)})
        self._cache_after_commit(uow, view)
        return view

    def _update(
        self, uow: UnitOfWork, record_id: str, values: dict[str, Any], expected_version: int | None
    ) -> RecordView:
        row = self._load(uow, record_id, include_archived=False)
        uow.require_version(row, expected_version, self.spec.event_name)
        scope = uow.scope
        assert scope is not None
        custom_values = values.pop("custom_fields", None) if self.spec.custom_fields else None
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        if custom_values:
            new_custom = custom.validate_values(uow, self.spec.object_type, custom_values, creating=False,
                                                current=row.custom)  # type: ignore[attr-defined]
            if new_custom != row.custom:  # type: ignore[attr-defined]
                changed["custom"] = new_custom
        if isinstance(row, OwnedMixin) and "owner_id" in changed:
            self._check_owner_visible(scope, changed, creating=False)
        if changed:
            unique, key = self.spec.unique_field, self.spec.unique_key
            if unique in changed and key and getattr(row, key) is not None:
                self._check_unique(uow, changed, row.id)
                changed[key] = changed[unique]
            if self.spec.check_references:
                self.spec.check_references(uow, changed)
            self._before_update(uow, row, changed)
            self._change(uow, row, changed, action="updated", event="updated")
            if "custom" in changed:
                custom.claim_unique_values(uow, self.spec.object_type, row.id, changed["custom"])
            self._after_write(uow, row, "updated", changed)
        return self._view(row)

    def _archive(self, uow: UnitOfWork, record_id: str, expected_version: int | None) -> RecordView:
        row = self._load(uow, record_id, include_archived=True)
        uow.require_version(row, expected_version, self.spec.event_name)
        if row.archived_at is None:  # archiving twice is a no-op, so retries are safe
            self._change(uow, row, {"archived_at": utcnow()}, action="archived", event="archived")
            if self.spec.custom_fields:
                custom.release_unique_values(uow, row.id)
            self._after_write(uow, row, "archived", {})
        return self._view(row)

    def _change(self, uow: UnitOfWork, row: RecordMixin, values: dict[str, Any], *, action: str, event: str) -> None:
        now = utcnow()
        changes = {k: (self._plain(getattr(row, k)), self._plain(v)) for k, v in values.items()
                   if k not in ("custom", self.spec.unique_key)}
        if "custom" in values:
            before, after = getattr(row, "custom") or {}, values["custom"] or {}  # noqa: B009
            changes.update({f"custom_fields.{k}": (before.get(k), after.get(k))
                            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)})
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
        try:
            uow.flush(self.spec.event_name)  # the version column bumps here; a concurrent writer makes this fail
        except IntegrityError:
            raise self._integrity_conflict(uow, values, row.id) from None
        record_changes(uow, object_type=self.spec.object_type, record_id=row.id, action=action,
                       changes=changes, at=now)
        view = self._view(row)
        emit(uow, event_type=f"{self.spec.event_name}.{event}", object_type=self.spec.object_type, record_id=row.id,
             data={"object": json.loads(view.body),
                   "changes": {k: {"old": old, "new": new} for k, (old, new) in changes.items()}})
        workspace_id, object_type = row.workspace_id, self.spec.object_type
        uow.before_commit(lambda: record_cache.mark_pending(uow, workspace_id, object_type, view.id, view.version))
        self._cache_after_commit(uow, view)

    def _batch_create(self, uow: UnitOfWork, raw: Any, index: int) -> tuple[str, int, RecordView]:
        data = validate(self.spec.create_schema, raw, prefix=("inputs", index))
        return "created", 201, self._create(uow, data.model_dump())

    def _batch_create_duplicates(self, uow: UnitOfWork, raw: Any, index: int) -> tuple[str, int, RecordView]:
        data = validate(self.spec.create_schema, raw, prefix=("inputs", index))
        return "created", 201, self._create(uow, data.model_dump(), allow_duplicate=True)

    def _batch_update(self, uow: UnitOfWork, raw: Any, index: int) -> tuple[str, int, RecordView]:
        record_id = _input_id(raw, index)
        data = validate(self.spec.update_schema, {k: v for k, v in raw.items() if k != "id"}, prefix=("inputs", index))
        return "updated", 200, self._update(uow, record_id, data.model_dump(exclude_unset=True), None)

    def _batch_archive(self, uow: UnitOfWork, raw: Any, index: int) -> tuple[str, int, RecordView | None]:
        record_id = _input_id(raw, index)
        if set(raw) - {"id"}:
            raise ValidationFailed("archive inputs take only `id`", errors=[
                {"field": f"inputs.{index}.{k}", "message": "unknown field", "code": "extra_forbidden"}
                for k in sorted(set(raw) - {"id"})])
        self._archive(uow, record_id, None)
        return "archived", 200, None

    def _batch_upsert(self, uow: UnitOfWork, raw: Any, index: int) -> tuple[str, int, RecordView]:
        unique = self.spec.unique_field
        assert unique is not None, f"{self.spec.object_type} has no unique property to upsert on"
        data = validate(self.spec.create_schema, raw, prefix=("inputs", index))
        values = data.model_dump()
        if values.get(unique) is None:
            raise ValidationFailed(f"upsert matches on {unique}", errors=[
                {"field": f"inputs.{index}.{unique}", "message": "required for upsert", "code": "missing"}])
        existing = self._find_unique(uow, unique, values[unique], None)
        if existing is None:
            return "created", 201, self._create(uow, values)
        if existing.archived_at is not None:
            raise UniqueConflict(field=unique, value=values[unique], existing_id=existing.id)
        update = data.model_dump(exclude_unset=True)
        return "updated", 200, self._update(uow, existing.id, update, None)

    # ---- links ------------------------------------------------------------------------------------------
    body_shows_links = False  # a capability whose record body lists its associations sets this

    def purge_archived(
        self, uow: UnitOfWork, *, archived_before: datetime, limit: int,
        forget: Callable[[UnitOfWork, builtins.list[str]], None],
    ) -> int:
        """Hard-delete up to `limit` records archived before the cutoff; `forget` first removes what refers
        to them (links, stage changes). Field history stays. Returns how many went (< limit: none left)."""
        model: Any = self.spec.model
        # Locked, so a restore racing the purge waits for it (and then finds nothing to restore).
        ids = builtins.list(uow.session.scalars(
            select(model.id).where(model.archived_at < archived_before)
            .order_by(model.archived_at, model.id).limit(limit).with_for_update()))
        if ids:
            forget(uow, ids)
            statements = [delete(custom.CustomUniqueValue).where(custom.CustomUniqueValue.record_id.in_(ids))]
            statements.append(delete(model).where(model.id.in_(ids)))
            for statement in statements:
                uow.session.execute(statement.execution_options(synchronize_session=False))
        return len(ids)

    def links_changed(self, uow: UnitOfWork, record_id: str) -> None:
        """A link of this record was added or removed elsewhere (the associations API, a merge). When the
        body shows links, the record moves to a new version so ETags and If-None-Match stay truthful."""
        if not self.body_shows_links:
            return
        row = uow.session.get(self.spec.model, record_id)
        if row is not None:
            row.updated_at = utcnow()
            uow.flush(self.spec.event_name)

    # ---- hooks a capability's service may override (deals: stage rules) -----------------------------
    def _before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        """Adjust or refuse the values of a new record (inside the transaction)."""

    def _before_update(self, uow: UnitOfWork, row: RecordMixin, changed: dict[str, Any]) -> None:
        """Adjust or refuse a change before it is applied (inside the transaction)."""

    def _after_write(self, uow: UnitOfWork, row: RecordMixin, action: str, changed: dict[str, Any]) -> None:
        """Write what else belongs to the change, in the same transaction (e.g. a stage-change row)."""

    # ---- helpers ------------------------------------------------------------------------------------
    def _columns(
        self, uow: UnitOfWork, values: dict[str, Any], *, creating: bool, current_custom: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Schema values → model columns (custom_fields validated into the `custom` column)."""
        columns = {k: v for k, v in values.items() if k != "custom_fields"}
        if self.spec.custom_fields:
            columns["custom"] = custom.validate_values(
                uow, self.spec.object_type, values.get("custom_fields"), creating=creating, current=current_custom)
        return columns

    def _visible(self, scope: Scope, body: str) -> bool:
        if scope.visible_owner_ids is None or not issubclass(self.spec.model, OwnedMixin):
            return True
        return json.loads(body).get("owner_id") in scope.visible_owner_ids

    @staticmethod
    def _check_owner_visible(scope: Scope, values: dict[str, Any], *, creating: bool) -> None:
        visible = scope.visible_owner_ids
        if visible is None:
            return
        if creating and values.get("owner_id") is None:
            values["owner_id"] = scope.actor.id  # a restricted member's new record is theirs
        if values.get("owner_id") not in visible:
            raise ValidationFailed("owner_id must be you or one of your teammates", errors=[
                {"field": "owner_id", "message": "outside the records you may see", "code": "visibility"}])

    def _load(self, uow: UnitOfWork, record_id: str, *, include_archived: bool = True) -> RecordMixin:
        row = uow.session.get(self.spec.model, record_id)
        if row is None or (row.archived_at is not None and not include_archived):
            raise self._not_found(record_id)
        return row

    def _find_unique(self, uow: UnitOfWork, field: str, value: Any, exclude_id: str | None) -> RecordMixin | None:
        model = self.spec.model
        column = self.spec.unique_key or field
        statement = select(model).where(getattr(model, column) == value)
        if exclude_id is not None:
            statement = statement.where(model.id != exclude_id)
        return uow.session.scalars(statement.limit(1)).first()

    def _check_unique(self, uow: UnitOfWork, values: dict[str, Any], exclude_id: str | None) -> None:
        field = self.spec.unique_field
        if field is None or values.get(field) is None:
            return
        existing = self._find_unique(uow, field, values[field], exclude_id)
        if existing is not None:
            raise UniqueConflict(field=field, value=values[field], existing_id=existing.id)

    def _flush_new(self, uow: UnitOfWork, row: RecordMixin, values: dict[str, Any]) -> None:
        try:
            with uow.savepoint():  # a racing insert of the same unique value fails only this step
                uow.session.add(row)
        except IntegrityError:
            raise self._integrity_conflict(uow, values, None) from None

    def _integrity_conflict(self, uow: UnitOfWork, values: dict[str, Any], exclude_id: str | None) -> AppError:
        field = self.spec.unique_field
        if field and values.get(field) is not None:
            existing = self._find_unique(uow, field, values[field], exclude_id)
            if existing is not None:
                return UniqueConflict(field=field, value=values[field], existing_id=existing.id)
        return Conflict("the write clashed with another record")

    def _cache_after_commit(self, uow: UnitOfWork, view: RecordView) -> None:
        scope = uow.scope
        assert scope is not None
        workspace_id, object_type = scope.workspace_id, self.spec.object_type
        uow.after_commit(lambda: record_cache.put_written(workspace_id, object_type, view.id, _cached(view)))

    def _dump_page(self, rows: builtins.list[Any]) -> builtins.list[str]:
        """A page's record bodies. One pydantic pass for the whole page (a third cheaper than one per
        row) unless a capability renders records its own way (`_dump` overridden)."""
        if not self._renders_plain_rows() or not rows:
            return [self._dump(row) for row in rows]
        return [self._page_adapter.dump_json(self._page_adapter.validate_python(rows, from_attributes=True))
                .decode()[1:-1]]

    def _renders_plain_rows(self) -> bool:
        return type(self)._dump is RecordService._dump

    def _dump(self, row: RecordMixin) -> str:
        return self.spec.read_schema.model_validate(row).model_dump_json()

    def _view(self, row: RecordMixin) -> RecordView:
        return RecordView(row.id, row.version, row.archived_at is not None, self._dump(row))

    def _plain(self, value: Any) -> Any:
        return isoformat(value) if isinstance(value, datetime) else self._json_value.dump_python(value, mode="json")

    def _not_found(self, record_id: str) -> NotFound:
        return NotFound(f"no {self.spec.event_name} with id {record_id}")


def _names_custom(request: SearchRequest) -> bool:
    named = [f.property for g in request.filter_groups for f in g.filters] + [s.property for s in request.sorts]
    return any(name.startswith("custom_fields.") for name in named)


def _cached(view: RecordView) -> record_cache.CachedRecord:
    return record_cache.CachedRecord(view.version, view.archived, view.body)


def _input_id(raw: Any, index: int) -> str:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise ValidationFailed("each input needs an `id`", errors=[
            {"field": f"inputs.{index}.id", "message": "required", "code": "missing"}])
    if not is_valid_id(raw["id"]):  # like RecordId in a schema: a body's id that cannot be ours is the client's 422
        raise ValidationFailed("`id` is not an id of this API", errors=[
            {"field": f"inputs.{index}.id", "message": "must be an id of this API (26 characters of Crockford "
             "base32)", "code": "invalid_id"}])
    return str(raw["id"])

