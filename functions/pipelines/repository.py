"""Pipeline and stage queries (the unit of work scopes every one of them to the caller's workspace)."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from functions.pipelines.models import Pipeline, Stage


def pipelines_page(session: Session, *, after_id: str | None, limit: int, include_archived: bool) -> list[Pipeline]:
    """Oldest first (a workspace has a handful): `limit + 1` rows, so the caller knows if more follow."""
    statement = select(Pipeline).order_by(Pipeline.id).limit(limit + 1)
    if after_id is not None:
        statement = statement.where(Pipeline.id > after_id)
    if not include_archived:
        statement = statement.where(Pipeline.archived_at.is_(None))
    return list(session.scalars(statement))


def pipeline(session: Session, pipeline_id: str, *, lock: bool = False) -> Pipeline | None:
    """One pipeline; `lock` takes its row lock, serialising stage edits (positions, the open-stage rule)."""
    statement = select(Pipeline).where(Pipeline.id == pipeline_id)
    if lock:
        statement = statement.with_for_update()
    return session.scalars(statement).first()


def live_stages(session: Session, pipeline_ids: list[str]) -> dict[str, list[Stage]]:
    """Each pipeline's live stages in order (one query for a whole page of pipelines)."""
    if not pipeline_ids:
        return {}
    rows = session.scalars(
        select(Stage)
        .where(Stage.pipeline_id.in_(pipeline_ids), Stage.archived_at.is_(None))
        .order_by(Stage.pipeline_id, Stage.position, Stage.id))
    by_pipeline: dict[str, list[Stage]] = defaultdict(list)
    for row in rows:
        by_pipeline[row.pipeline_id].append(row)
    return by_pipeline


def live_stage(session: Session, stage_id: str) -> Stage | None:
    """A live stage of a live pipeline."""
    return session.scalars(
        select(Stage)
        .join(Pipeline, Pipeline.id == Stage.pipeline_id)
        .where(Stage.id == stage_id, Stage.archived_at.is_(None), Pipeline.archived_at.is_(None))
    ).first()


def default_pipeline(session: Session) -> Pipeline | None:
    return session.scalars(
        select(Pipeline).where(Pipeline.is_default.is_(True), Pipeline.archived_at.is_(None)).limit(1)).first()


def other_defaults(session: Session, pipeline_id: str) -> list[Pipeline]:
    return list(session.scalars(
        select(Pipeline).where(Pipeline.is_default.is_(True), Pipeline.id != pipeline_id)))
