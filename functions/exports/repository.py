"""Export queries, always in the caller's workspace (the unit of work adds the tenancy criteria)."""
from __future__ import annotations

from sqlalchemy import select

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
