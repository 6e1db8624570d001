"""Exports: ask for one (queued with its job in the same transaction); the job pages through the records
with the search's keyset pagination into a temporary file, uploads it, and marks the export completed.

One job streams the whole export: memory stays at one page (200 records) whatever the size, and 100,000
contacts take well under a minute (bench/import_100k.py measures an export too). An export whose job the
worker gave up on is marked failed with the reason (`give_up`); one whose job vanished otherwise is
failed by the sweep.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import tempfile
from datetime import datetime
from typing import IO, Any

from functions.exports import repository, rules
from functions.exports.models import DataExport
from functions.exports.schemas import ExportCreate, ExportRead, ExportRunJob
from layers.db.uow import UnitOfWork
from layers.http.requests import page_json
from layers.queue.jobs import enqueue
from layers.records import custom
from layers.records.search import SearchRequest
from layers.records.service import RecordService, service_for
from layers.storage import files
from shared.clock import isoformat, utcnow
from shared.context import Scope, system_scope
from shared.cursors import id_page, id_position
from shared.errors import AppError, NotFound
from shared.settings import get_settings

RUN_JOB = "exports_run"
ACTIVE = ("queued", "running")
PAGE_SIZE = 200
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


# ---- reads --------------------------------------------------------------------------------------------
def get_export(scope: Scope, export_id: str) -> ExportRead:
    with UnitOfWork(scope) as uow:
        row = repository.get(uow, export_id)
        if row is None:
            raise NotFound(f"no export with id {export_id}")
        return _read(row)


def list_exports(scope: Scope, *, limit: int, cursor: str | None) -> str:
    secret = get_settings().cursor_secret
    before = id_position(cursor, secret, query="exports", direction="before")
    with UnitOfWork(scope) as uow:
        rows, next_cursor = id_page(repository.page(uow, before_id=before, limit=limit), limit=limit, secret=secret,
                                    query="exports", direction="before")
        bodies = [_read(row).model_dump_json() for row in rows]
    return page_json(bodies, next_cursor)


# ---- writes -------------------------------------------------------------------------------------------
def create_export(scope: Scope, data: ExportCreate) -> ExportRead:
    """Check the filter and the properties as the search would, then queue the export and its job together."""
    service = _service(data.object_type)
    with UnitOfWork(scope) as uow:
        service.check_filter(uow, data.filter_groups)
        _columns(uow, service, data.properties)
        visible = scope.visible_owner_ids
        row = DataExport(workspace_id=scope.workspace_id, object_type=data.object_type, format=data.format,
                         status="queued", request=data.model_dump(mode="json", exclude={"object_type", "format"}),
                         visible_owner_ids=sorted(visible) if visible is not None else None,
                         created_by=scope.actor.id, row_count=0)
        uow.session.add(row)
        uow.session.flush()
        enqueue(uow, RUN_JOB, ExportRunJob(workspace_id=scope.workspace_id, export_id=row.id))
        uow.commit()
        return _read(row)


# ---- the job ------------------------------------------------------------------------------------------
def run_export(job: ExportRunJob) -> str:
    """Write the file and mark the export completed; a re-delivery of a finished export does nothing."""
    scope = system_scope(job.workspace_id, source="worker")
    with UnitOfWork(scope) as uow:
        row = repository.get(uow, job.export_id, for_update=True)
        if row is None or row.status in ("completed", "failed"):
            return "nothing to do"
        row.status, row.started_at = "running", utcnow()
        uow.commit()
    if row.visible_owner_ids is not None:  # the requester's visibility, not the whole workspace
        scope = dataclasses.replace(scope, visible_owner_ids=frozenset(row.visible_owner_ids))
    key = files.workspace_key(job.workspace_id, "exports", row.id, f"{row.object_type}.{row.format}")
    try:
        with tempfile.TemporaryFile() as spool:
            count = _write(spool, scope, row)
            spool.seek(0)
            files.put_stream(key, spool, content_type=CONTENT_TYPES[row.format], retention="7d")
    except AppError as error:  # e.g. a filter on a custom field deleted since: the export cannot be made
        return _close(job, status="failed", error=error.detail)
    return _close(job, status="completed", key=key, count=count)


def give_up(job: ExportRunJob, reason: str) -> None:
    """The worker gave up on the export's job: it failed, saying why (a finished export stays as it is)."""
    with UnitOfWork(system_scope(job.workspace_id, source="worker")) as uow:
        row = repository.get(uow, job.export_id, for_update=True)
        if row is None or row.status not in ACTIVE:
            return
        row.status, row.error, row.finished_at = "failed", f"the export could not be made: its job {reason}", utcnow()
        uow.commit()


def fail_stalled(*, now: datetime | None = None, limit: int = 500) -> int:
    """Fail exports running for longer than an export can take (their job is gone); how many."""
    now = now or utcnow()
    started_before = now - rules.STALLED_AFTER
    with UnitOfWork(unscoped=True) as uow:
        workspaces = repository.workspaces_with_stalled(uow.session, started_before=started_before, limit=limit)
    failed = 0
    for workspace_id in workspaces:
        with UnitOfWork(system_scope(workspace_id, source="worker")) as uow:
            for row in repository.stalled(uow, started_before=started_before):
                row.status, row.finished_at = "failed", now
                row.error = (f"the export could not be made: its job has been running since "
                             f"{isoformat(row.started_at)} and was given up")
                failed += 1
            uow.commit()
    return failed


def _write(spool: IO[bytes], scope: Scope, row: DataExport) -> int:
    service = _service(row.object_type)
    request: dict[str, Any] = row.request or {}
    with UnitOfWork(scope) as uow:
        columns = _columns(uow, service, request.get("properties"))
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    writer = csv.writer(text) if row.format == "csv" else None
    if writer is not None:
        writer.writerow(columns)
    count, cursor = 0, None
    while True:
        search = SearchRequest.model_validate({"filter_groups": request.get("filter_groups") or [],
                                               "query": request.get("query"), "limit": PAGE_SIZE, "cursor": cursor})
        page = json.loads(service.search(scope, search))
        for record in page["data"]:
            if writer is not None:
                writer.writerow([rules.csv_cell(rules.value_of(record, column)) for column in columns])
            else:
                text.write(rules.json_line(record, columns if request.get("properties") else None) + "\n")
            count += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    text.flush()
    text.detach()
    return count


def _close(job: ExportRunJob, *, status: str, key: str | None = None, count: int = 0, error: str | None = None) -> str:
    with UnitOfWork(system_scope(job.workspace_id, source="worker")) as uow:
        row = repository.get(uow, job.export_id, for_update=True)
        if row is None:
            return "nothing to do"
        row.status, row.file_key, row.row_count, row.error = status, key, count, error
        row.finished_at = utcnow()
        uow.commit()
    return status


# ---- helpers ------------------------------------------------------------------------------------------
def _service(object_type: str) -> RecordService:
    service = service_for(object_type)
    assert service is not None, f"no record service for {object_type}"
    return service


def _columns(uow: UnitOfWork, service: RecordService, requested: list[str] | None) -> list[str]:
    keys = [d.key for d in custom.definitions(uow, service.spec.object_type)] if service.spec.custom_fields else []
    return rules.columns(requested, builtin=service.spec.read_schema.model_fields, custom_keys=keys)


def _read(row: DataExport) -> ExportRead:
    request: dict[str, Any] = row.request or {}
    url = None
    if row.status == "completed" and row.file_key:
        url = files.download_url(row.file_key, file_name=f"{row.object_type}-{row.id}.{row.format}")
    return ExportRead.model_validate({
        "id": row.id, "object_type": row.object_type, "format": row.format, "status": row.status,
        "filter_groups": request.get("filter_groups") or [], "query": request.get("query"),
        "properties": request.get("properties"), "row_count": row.row_count, "error": row.error,
        "download_url": url, "created_at": row.created_at, "started_at": row.started_at,
        "finished_at": row.finished_at})
