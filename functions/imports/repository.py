"""Import queries, always in the caller's workspace (the unit of work adds the tenancy criteria)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from functions.imports.models import DataImport, ImportReject
from layers.db.uow import UnitOfWork


def get(uow: UnitOfWork, import_id: str, *, for_update: bool = False) -> DataImport | None:
    """The import; `for_update` locks its row, so a chunk and a cancel (or two deliveries) take turns."""
    statement = select(DataImport).where(DataImport.id == import_id)
    if for_update:
        statement = statement.with_for_update()
    return uow.session.scalars(statement).first()


def page(uow: UnitOfWork, *, before_id: str | None, limit: int) -> list[DataImport]:
    """Newest first; one row more than `limit` tells there is a next page."""
    statement = select(DataImport).order_by(DataImport.id.desc()).limit(limit + 1)
    if before_id is not None:
        statement = statement.where(DataImport.id < before_id)
    return list(uow.session.scalars(statement))


def add_reject(uow: UnitOfWork, data_import: DataImport, row_number: int, raw: list[str], reason: str) -> None:
    uow.session.add(ImportReject(workspace_id=data_import.workspace_id, import_id=data_import.id,
                                 row_number=row_number, raw=raw, reason=reason[:10_000]))


def rejects(uow: UnitOfWork, import_id: str, *, batch: int = 500) -> Iterator[ImportReject]:
    """The import's rejected rows in file order, read `batch` at a time (bounded memory)."""
    after = 0
    while True:
        statement = (select(ImportReject).where(ImportReject.import_id == import_id, ImportReject.row_number > after)
                     .order_by(ImportReject.row_number).limit(batch))
        rows = list(uow.session.scalars(statement))
        yield from rows
        for row in rows:
            uow.session.expunge(row)
        if len(rows) < batch:
            return
        after = rows[-1].row_number


def _stalled(running_before: datetime, queued_before: datetime) -> ColumnElement[bool]:
    return or_(and_(DataImport.status == "running", DataImport.updated_at < running_before),
               and_(DataImport.status == "queued", DataImport.updated_at < queued_before))


def workspaces_with_stalled(session: Session, *, running_before: datetime, queued_before: datetime,
                            limit: int) -> list[str]:
    """Unscoped: workspaces holding imports that made no progress since those times."""
    return list(dict.fromkeys(session.scalars(
        select(DataImport.workspace_id).where(_stalled(running_before, queued_before))
        .order_by(DataImport.updated_at).limit(limit))))


def stalled(uow: UnitOfWork, *, running_before: datetime, queued_before: datetime) -> list[DataImport]:
    """The workspace's stalled imports, row-locked (a chunk that commits meanwhile waits, then finds them failed)."""
    return list(uow.session.scalars(
        select(DataImport).where(_stalled(running_before, queued_before))
        .order_by(DataImport.id).with_for_update()))
