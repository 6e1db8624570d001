"""Imports: create one (a multipart upload, a presigned PUT, or an object already in the workspace's
prefix), preview it with a mapping, commit it, and run it a chunk per job.

Rows go through the record services' own batch machinery (`RecordService.batch_in`), so an imported
row meets exactly the rules an API write does; each row has its own savepoint. A chunk's rows commit
together with the import's checkpoint and the continuation job, so a re-delivered message finds the
checkpoint moved on and does nothing: no row is applied twice (deals have no natural key).

An import is bulk work: its jobs, and the events its rows emit, go by the bulk lane (layers/queue/lanes.py),
so they never queue ahead of the jobs people wait for. An import whose job the worker gave up on is
marked failed with the reason (`give_up`); one whose job vanished otherwise is failed by the sweep.
"""
from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy.orm.exc import StaleDataError

from functions.imports import repository, rules
from functions.imports.models import DataImport
from functions.imports.schemas import (
    ImportCommit,
    ImportCounts,
    ImportCreate,
    ImportPreview,
    ImportRead,
    ImportRunJob,
    Mapping,
    PreviewRow,
)
from layers.db.uow import UnitOfWork
from layers.http.requests import page_json, validate
from layers.queue.jobs import enqueue
from layers.queue.lanes import BULK, working_in
from layers.records import custom
from layers.records.service import BatchOperation, RecordService, service_for
from layers.storage import files
from shared.clock import isoformat, monotonic, utcnow
from shared.context import Scope, system_scope
from shared.cursors import id_page, id_position
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.ids import new_id
from shared.jsondepth import nests_deeper_than
from shared.settings import get_settings

RUN_JOB = "imports_run"
PREVIEWABLE = ("awaiting_upload", "uploaded", "previewed")
CANCELLABLE = ("awaiting_upload", "uploaded", "previewed", "queued", "running")
_CUSTOM_KINDS = {"number": "number", "boolean": "boolean", "multi_select": "array"}
_schema_kinds: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class Upload:
    """A file sent in the request body (multipart/form-data), within the API's body limit."""

    file_name: str | None
    content: bytes


# ---- reads --------------------------------------------------------------------------------------------
def get_import(scope: Scope, import_id: str) -> ImportRead:
    with UnitOfWork(scope) as uow:
        return _read(_load(uow, import_id))


def list_imports(scope: Scope, *, limit: int, cursor: str | None) -> str:
    secret = get_settings().cursor_secret
    before = id_position(cursor, secret, query="imports", direction="before")
    with UnitOfWork(scope) as uow:
        rows, next_cursor = id_page(repository.page(uow, before_id=before, limit=limit), limit=limit, secret=secret,
                                    query="imports", direction="before")
        bodies = [_read(row).model_dump_json() for row in rows]
    return page_json(bodies, next_cursor)


# ---- writes -------------------------------------------------------------------------------------------
def create_import(scope: Scope, data: ImportCreate, *, upload: Upload | None = None) -> ImportRead:
    """The file is checked (CSV text with a header) before anything is stored."""
    import_id = new_id()
    row = DataImport(id=import_id, workspace_id=scope.workspace_id, object_type=data.object_type,
                     file_name=data.file_name, options={}, created_by=scope.actor.id)
    if upload is not None and data.source_key is not None:
        raise ValidationFailed("send a file or name a source_key, not both", errors=[
            {"field": "source_key", "message": "not with a file", "code": "conflict"}])
    if upload is not None:
        head = rules.inspect_sample(upload.content[: rules.SAMPLE_BYTES], size=len(upload.content))
        row.source_key = files.workspace_key(scope.workspace_id, "imports", import_id, "source.csv")
        row.file_name = upload.file_name or data.file_name
        files.put_bytes(row.source_key, upload.content, content_type="text/csv")
        _inspected(row, head, len(upload.content))
    elif data.source_key is not None:
        row.source_key = _own_key(scope, data.source_key)
        _inspect_object(row, missing=lambda: ValidationFailed("there is no object with that key", errors=[
            {"field": "source_key", "message": "no such object", "code": "missing"}]))
        row.file_name = row.file_name or data.source_key.rsplit("/", 1)[-1]
    else:
        row.source_key = files.workspace_key(scope.workspace_id, "imports", import_id, "source.csv")
        row.status = "awaiting_upload"
    with UnitOfWork(scope) as uow:
        uow.session.add(row)
        uow.commit()
    return _read(row)


def preview(scope: Scope, import_id: str, mapping: Mapping | None) -> ImportPreview:
    """The header, the suggested mapping, and the first rows as the inputs they become, with what the
    API would refuse in each (the create schema and custom field rules)."""
    with UnitOfWork(scope) as uow:
        row = _load(uow, import_id, for_update=True)
        _check_status(row, PREVIEWABLE, "previewed")
        _ensure_uploaded(row)
        header = row.header or []
        kinds = mappable(uow, row.object_type)
        suggested = rules.suggest_mapping(header, kinds)
        chosen = mapping if mapping is not None else suggested
        mapped = rules.check_mapping(chosen, header=header, properties=kinds, object_type=row.object_type)
        rows = [_preview_row(uow, row, number, cells, mapped, kinds) for number, cells in _first_rows(row)]
        row.status, row.updated_at = "previewed", utcnow()
        uow.commit()
        return ImportPreview.model_validate({
            "import": _read(row), "header": header, "delimiter": row.delimiter or ",", "properties": sorted(kinds),
            "suggested_mapping": suggested, "mapping": chosen, "rows": rows})


def commit(scope: Scope, import_id: str, data: ImportCommit) -> ImportRead:
    """Queue the import: the mapping is checked, and the job enqueued in the same transaction."""
    with UnitOfWork(scope) as uow:
        row = _load(uow, import_id, for_update=True)
        _check_status(row, PREVIEWABLE, "committed")
        _ensure_uploaded(row)
        kinds = mappable(uow, row.object_type)
        rules.check_mapping(data.mapping, header=row.header or [], properties=kinds, object_type=row.object_type)
        now = utcnow()
        row.mapping, row.options = dict(data.mapping), data.options.model_dump()
        row.status, row.queued_at, row.updated_at = "queued", now, now
        row.byte_offset = row.data_offset or 0
        enqueue(uow, RUN_JOB, ImportRunJob(workspace_id=row.workspace_id, import_id=row.id, position=0), lane=BULK)
        _commit_or_conflict(uow)
        return _read(row)


def cancel(scope: Scope, import_id: str) -> ImportRead:
    """Stop the import: rows already committed stay; the next chunk finds it cancelled and stops."""
    with UnitOfWork(scope) as uow:
        row = _load(uow, import_id, for_update=True)
        _check_status(row, CANCELLABLE, "cancelled")
        now = utcnow()
        row.status, row.finished_at, row.updated_at = "cancelled", now, now
        _commit_or_conflict(uow)
        return _read(row)


# ---- the job ------------------------------------------------------------------------------------------
def run_chunk(job: ImportRunJob) -> str:
    """Import the next chunk of rows after the checkpoint; enqueue the continuation, or finish."""
    settings = get_settings()
    # However the chunk is run, the events its rows emit (and what consumers make of them) are bulk work.
    with working_in(BULK), UnitOfWork(system_scope(job.workspace_id, source="worker")) as uow:
        row = repository.get(uow, job.import_id, for_update=True)
        if row is None or row.status not in rules.ACTIVE or row.rows_processed != job.position:
            return "nothing to do"  # gone, cancelled, or a re-delivery of a chunk already committed
        now = utcnow()
        if row.status == "queued":
            row.status, row.started_at = "running", now
        outcome = _import_rows(uow, row, chunk_rows=settings.import_chunk_rows,
                               deadline=monotonic() + settings.import_chunk_seconds)
        if outcome == "more":
            enqueue(uow, RUN_JOB, ImportRunJob(workspace_id=row.workspace_id, import_id=row.id,
                                               position=row.rows_processed), lane=BULK)
        else:
            _finish(uow, row, outcome)
        row.updated_at = utcnow()
        uow.commit()
        return outcome


def give_up(job: ImportRunJob, reason: str) -> None:
    """The worker gave up on this chunk's job: the import failed, saying why (rows committed stay).

    A stale copy of an earlier chunk's job (the checkpoint moved past it) changes nothing."""
    with UnitOfWork(system_scope(job.workspace_id, source="worker")) as uow:
        row = repository.get(uow, job.import_id, for_update=True)
        if row is None or row.status not in rules.ACTIVE or row.rows_processed != job.position:
            return
        _fail(row, f"the import stopped after {row.rows_processed} rows: its job {reason}")
        uow.commit()


def fail_stalled(*, now: datetime | None = None, limit: int = 500) -> int:
    """Fail imports whose job is gone (no chunk for an hour, or never started in a day); how many."""
    now = now or utcnow()
    running_before, queued_before = now - rules.STALLED_RUNNING_AFTER, now - rules.STALLED_QUEUED_AFTER
    with UnitOfWork(unscoped=True) as uow:
        workspaces = repository.workspaces_with_stalled(uow.session, running_before=running_before,
                                                        queued_before=queued_before, limit=limit)
    failed = 0
    for workspace_id in workspaces:
        with UnitOfWork(system_scope(workspace_id, source="worker")) as uow:
            for row in repository.stalled(uow, running_before=running_before, queued_before=queued_before):
                _fail(row, f"the import stopped after {row.rows_processed} rows: its job made no progress "
                           f"since {isoformat(row.updated_at)} and was given up", at=now)
                failed += 1
            uow.commit()
    return failed


def _fail(row: DataImport, error: str, *, at: datetime | None = None) -> None:
    at = at or utcnow()
    row.status, row.error, row.finished_at, row.updated_at = "failed", error, at, at


def _import_rows(uow: UnitOfWork, row: DataImport, *, chunk_rows: int, deadline: float) -> str:
    """`more` after a full chunk (or the time budget), `completed` at the end of the file, `failed` when the
    file cannot be read on."""
    service = service_for(row.object_type)
    assert service is not None, f"no record service for {row.object_type}"
    kinds = mappable(uow, row.object_type)
    mapped = {column: prop for column, prop in (row.mapping or {}).items() if prop is not None}
    if row.size_bytes is not None and row.byte_offset >= row.size_bytes:
        return "completed"
    try:
        text = files.open_text(row.source_key, offset=row.byte_offset, encoding="utf-8")
    except ClientError as error:
        row.error = f"the file cannot be read: {error.response.get('Error', {}).get('Code', 'error')}"
        return "failed"
    records = rules.OffsetCsv(text, start=row.byte_offset, delimiter=row.delimiter or ",")
    done = 0
    try:
        for cells in records:
            row.rows_processed += 1
            if any(cell.strip() for cell in cells):
                _import_row(uow, service, row, cells, mapped, kinds)
            row.byte_offset = records.offset
            done += 1
            if done >= chunk_rows or monotonic() >= deadline:
                at_end = row.size_bytes is not None and row.byte_offset >= row.size_bytes
                return "completed" if at_end else "more"
    except (csv.Error, UnicodeDecodeError) as exc:
        row.error = f"row {row.rows_processed} cannot be read, so the import stopped there: {exc}"
        return "failed"
    finally:
        text.close()
    return "completed"


def _import_row(uow: UnitOfWork, service: RecordService, row: DataImport, cells: list[str],
                mapped: dict[str, str], kinds: dict[str, str]) -> None:
    given = rules.row_input(row.header or [], cells, mapped, kinds)
    if given.errors:
        _reject(uow, row, cells, rules.cell_errors_reason(given.errors))
        return
    operation, values = _operation(row, given.values)
    (result,) = service.batch_in(uow, operation, [values])
    if result.error is not None:
        _reject(uow, row, cells, rules.reject_reason(result.error))
    elif result.outcome == "created":
        row.created_count += 1
    else:
        row.updated_count += 1


def _operation(row: DataImport, values: dict[str, Any]) -> tuple[BatchOperation, dict[str, Any]]:
    """Contacts and companies: upsert on their key when the row has one; deals: update when an id is
    mapped and given, else create."""
    if row.object_type == "deals":
        return ("update" if values.get("id") else "create"), values
    key = rules.KEY_PROPERTIES[row.object_type]
    if values.get(key) and row.options.get("update_existing", True):
        return "upsert", values
    return "create", values


def _reject(uow: UnitOfWork, row: DataImport, cells: list[str], reason: str) -> None:
    row.rejected_count += 1
    repository.add_reject(uow, row, row.rows_processed, cells, reason)


def _finish(uow: UnitOfWork, row: DataImport, status: str) -> None:
    """Stream the rejected rows (original columns + `error`) into a CSV in the bucket, then close the import."""
    if row.rejected_count:
        row.rejects_key = files.workspace_key(row.workspace_id, "imports", row.id, "rejects.csv")
        width = len(row.header or [])
        with tempfile.TemporaryFile() as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
            writer = csv.writer(text, delimiter=row.delimiter or ",")
            writer.writerow([*(row.header or []), "error"])
            for reject in repository.rejects(uow, row.id):
                cells = list(reject.raw) + [""] * (width - len(reject.raw))
                writer.writerow([*cells, reject.reason])
            text.flush()
            text.detach()
            spool.seek(0)
            files.put_stream(row.rejects_key, spool, content_type="text/csv")
    row.status, row.finished_at = status, utcnow()


# ---- helpers ------------------------------------------------------------------------------------------
def mappable(uow: UnitOfWork, object_type: str) -> dict[str, str]:
    """What a column may be mapped to → how its cells are read (`string`, `integer`, `number`, `boolean`,
    `array`): the create schema's fields, `id` for deals, and the live custom fields."""
    service = service_for(object_type)
    assert service is not None, f"no record service for {object_type}"
    kinds = dict(_schema_kinds_of(service))
    if object_type == "deals":
        kinds["id"] = "string"
    if service.spec.custom_fields:
        for definition in custom.definitions(uow, object_type):
            if not definition.archived:
                kinds[rules.CUSTOM_PREFIX + definition.key] = _CUSTOM_KINDS.get(definition.type, "string")
    return kinds


def _schema_kinds_of(service: RecordService) -> dict[str, str]:
    object_type = service.spec.object_type
    if object_type not in _schema_kinds:
        schema = service.spec.create_schema.model_json_schema()
        _schema_kinds[object_type] = {name: _json_kind(prop) for name, prop in schema["properties"].items()
                                      if name != "custom_fields"}
    return _schema_kinds[object_type]


def _json_kind(prop: dict[str, Any]) -> str:
    types = [option.get("type") for option in prop.get("anyOf", [prop])]
    types = [t for t in types if t not in (None, "null")]
    if "string" in types or not types:  # e.g. an amount: a decimal string is exact, a float is not
        return "string"
    return str(types[0])


def _preview_row(uow: UnitOfWork, row: DataImport, number: int, cells: list[str], mapped: dict[str, str],
                 kinds: dict[str, str]) -> PreviewRow:
    given = rules.row_input(row.header or [], cells, mapped, kinds)
    errors = list(given.errors)
    service = service_for(row.object_type)
    assert service is not None
    values = {k: v for k, v in given.values.items() if k != "id"}
    schema = service.spec.update_schema if given.values.get("id") else service.spec.create_schema
    try:
        validate(schema, values)
    except ValidationFailed as error:
        errors.extend(error.errors or [{"field": "row", "message": error.detail, "code": "invalid"}])
    if service.spec.custom_fields and not any(str(e.get("field", "")).startswith("custom_fields") for e in errors):
        try:
            custom.validate_values(uow, row.object_type, values.get("custom_fields"), creating=True, current=None)
        except ValidationFailed as error:
            errors.extend(error.errors or [{"field": "custom_fields", "message": error.detail, "code": "invalid"}])
    return PreviewRow(row_number=number, values=given.values, errors=errors)


def _first_rows(row: DataImport) -> list[tuple[int, list[str]]]:
    """The first rows after the header (blank ones skipped), read from the stream and no further."""
    found: list[tuple[int, list[str]]] = []
    if row.size_bytes is not None and (row.data_offset or 0) >= row.size_bytes:
        return found
    with files.open_text(row.source_key, offset=row.data_offset or 0, encoding="utf-8") as text:
        records = rules.OffsetCsv(text, start=row.data_offset or 0, delimiter=row.delimiter or ",")
        try:
            for number, cells in enumerate(records, start=1):
                if any(cell.strip() for cell in cells):
                    found.append((number, cells))
                if len(found) >= rules.PREVIEW_ROWS:
                    break
        except (csv.Error, UnicodeDecodeError) as exc:
            raise rules.NotCsv(f"row {len(found) + 1} cannot be read: {exc}", errors=[
                {"field": "file", "message": str(exc), "code": "not_csv"}]) from None
    return found


def _ensure_uploaded(row: DataImport) -> None:
    """A presigned upload is checked the first time the import is previewed or committed."""
    if row.status == "awaiting_upload":
        _inspect_object(row, missing=lambda: Conflict(
            "the file has not been uploaded yet: PUT it to the import's upload_url first"))


def _inspect_object(row: DataImport, *, missing: Any) -> None:
    info = files.head(row.source_key)
    if info is None:
        raise missing()
    head = rules.inspect_sample(files.read_head(row.source_key, rules.SAMPLE_BYTES), size=info.size)
    _inspected(row, head, info.size)


def _inspected(row: DataImport, head: rules.CsvHead, size: int) -> None:
    row.header, row.delimiter, row.data_offset = head.header, head.delimiter, head.data_offset
    row.size_bytes, row.byte_offset, row.status = size, head.data_offset, "uploaded"


def _own_key(scope: Scope, key: str) -> str:
    if not files.in_workspace(scope.workspace_id, key):
        raise ValidationFailed("source_key must be inside the workspace's prefix", errors=[
            {"field": "source_key", "message": f"must start with {scope.workspace_id}/", "code": "prefix"}])
    return key


def _load(uow: UnitOfWork, import_id: str, *, for_update: bool = False) -> DataImport:
    row = repository.get(uow, import_id, for_update=for_update)
    if row is None:
        raise NotFound(f"no import with id {import_id}")
    return row


def _check_status(row: DataImport, allowed: tuple[str, ...], action: str) -> None:
    if row.status not in allowed:
        raise Conflict(f"an import that is {row.status} cannot be {action}")


def _commit_or_conflict(uow: UnitOfWork) -> None:
    try:
        uow.commit()
    except StaleDataError:
        raise Conflict("the import changed at the same time (a chunk finished); retry") from None


def _read(row: DataImport) -> ImportRead:
    finished = row.status in rules.FINISHED
    progress = 1.0 if row.status == "completed" else (
        min(1.0, row.byte_offset / row.size_bytes) if row.size_bytes and row.rows_processed else 0.0)
    return ImportRead(
        id=row.id, object_type=row.object_type, status=row.status, file_name=row.file_name,  # type: ignore[arg-type]
        source_key=row.source_key, header=row.header, mapping=row.mapping, options=row.options or {},
        counts=ImportCounts(rows_total=row.created_count + row.updated_count + row.rejected_count,
                            created=row.created_count, updated=row.updated_count, rejected=row.rejected_count),
        progress=round(progress, 4), error=row.error,
        rejects_url=files.download_url(row.rejects_key, file_name=f"import-{row.id}-rejects.csv")
        if finished and row.rejects_key else None,
        upload_url=files.upload_url(row.source_key) if row.status == "awaiting_upload" else None,
        created_at=row.created_at, updated_at=row.updated_at, queued_at=row.queued_at, started_at=row.started_at,
        finished_at=row.finished_at)


def parse_mapping(text: str | None) -> Mapping | None:
    """The `mapping` query parameter (JSON) of a GET preview."""
    if text is None:
        return None
    try:
        value = None if nests_deeper_than(text) else json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
        raise ValidationFailed("mapping must be a JSON object of column → property or null", errors=[
            {"field": "query.mapping", "message": "must be a JSON object", "code": "type"}])
    return value
