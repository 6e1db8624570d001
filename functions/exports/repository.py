"""Export queries, always in the caller's workspace (the unit of work adds the tenancy criteria)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from functions.exports.models import DataExport
from layers.db.uow import UnitOfWork


def get(uow: UnitOfWork, export_id: str, *, for_update: bool = False) -> DataExport | None:
    statement = select(DataExport).where(DataExport.id == export_id)
    if for_update:
        statement = statement.with_for_update()
    return uow.session.scalars(statement).first()


def page(uow: UnitOfWork, *, before_id: str | None, limit: int) -> list[DataExport]:
    """Newest first; one row more than `limit` tells there is a next page."""
    statement = select(DataExport).order_by(DataExport.id.desc()).limit(limit + 1)
    if before_id is not None:
        statement = statement.where(DataExport.id < before_id)
    return list(uow.session.scalars(statement))


def workspaces_with_stalled(session: Session, *, started_before: datetime, limit: int) -> list[str]:
    """Unscoped: workspaces holding exports running since before `started_before`."""
    return list(dict.fromkeys(session.scalars(
        select(DataExport.workspace_id).where(DataExport.status == "running", DataExport.started_at < started_before)
        .order_by(DataExport.started_at).limit(limit))))


def stalled(uow: UnitOfWork, *, started_before: datetime) -> list[DataExport]:
    """The workspace's exports running since before `started_before`, row-locked."""
    return list(uow.session.scalars(
        select(DataExport).where(DataExport.status == "running", DataExport.started_at < started_before)
        .order_by(DataExport.id).with_for_update()))
