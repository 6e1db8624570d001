"""Pipeline use cases: pipelines with their ordered stages, and what other capabilities may ask of them.

Deals live in functions/deals, which this module does not import (deals imports it): the deals
capability registers a `StageOccupants` port, through which removing a stage counts and moves the
deals it holds inside this module's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from functions.pipelines import repository, rules
from functions.pipelines.models import Pipeline, Stage
from functions.pipelines.schemas import (
    PipelineCreate,
    PipelinePage,
    PipelineRead,
    PipelineUpdate,
    StageAdd,
    StageCreate,
    StageRead,
    StageUpdate,
)
from layers.db.uow import UnitOfWork
from layers.queue.outbox import emit
from shared.clock import utcnow
from shared.context import Scope
from shared.cursors import decode_cursor_for, encode_cursor
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.ids import new_id
from shared.settings import get_settings


@dataclass(frozen=True)
class StageInfo:
    """A live stage, as other capabilities see it."""

    id: str
    pipeline_id: str
    name: str
    position: int
    probability: Decimal
    kind: str


class StageOccupants(Protocol):
    """The deals in stages (registered by functions/deals)."""

    def count_in_stages(self, uow: UnitOfWork, stage_ids: list[str], *, include_archived: bool) -> int: ...

    def move_stage_deals(self, uow: UnitOfWork, from_stage: StageInfo, to_stage: StageInfo) -> int: ...


_occupants: StageOccupants | None = None


def use_stage_occupants(occupants: StageOccupants | None) -> None:
    global _occupants
    _occupants = occupants


def _deals() -> StageOccupants:
    if _occupants is None:
        raise RuntimeError("no stage occupants: functions/deals registers them")
    return _occupants


# ---- for other capabilities ---------------------------------------------------------------------------
def create_default_pipeline(uow: UnitOfWork) -> PipelineRead:
    """A new workspace's "Sales pipeline", inside the caller's unit of work."""
    stages = [StageCreate(name=name, probability=Decimal(probability), kind=kind)  # type: ignore[arg-type]
              for name, probability, kind in rules.DEFAULT_STAGES]
    return _create(uow, PipelineCreate(name=rules.DEFAULT_PIPELINE_NAME, stages=stages, is_default=True))


def get_stage(uow: UnitOfWork, stage_id: str) -> StageInfo | None:
    """A live stage of a live pipeline of the caller's workspace, or None."""
    stage = repository.live_stage(uow.session, stage_id)
    return _info(stage) if stage is not None else None


def stages_of(uow: UnitOfWork, pipeline_id: str) -> list[StageInfo]:
    """The pipeline's live stages in order (empty for an unknown pipeline)."""
    return [_info(s) for s in repository.live_stages(uow.session, [pipeline_id]).get(pipeline_id, [])]


def default_pipeline_id(uow: UnitOfWork) -> str | None:
    found = repository.default_pipeline(uow.session)
    return found.id if found is not None else None


def is_live(uow: UnitOfWork, pipeline_id: str) -> bool:
    return live_pipeline_name(uow, pipeline_id) is not None


def live_pipeline_name(uow: UnitOfWork, pipeline_id: str) -> str | None:
    """The name of a live pipeline of the caller's workspace; None when there is none with that id."""
    found = repository.pipeline(uow.session, pipeline_id)
    return found.name if found is not None and found.archived_at is None else None


# ---- pipelines ----------------------------------------------------------------------------------------
def list_pipelines(scope: Scope, *, limit: int, cursor: str | None, include_archived: bool) -> PipelinePage:
    secret = get_settings().cursor_secret
    position = decode_cursor_for(cursor, secret, a=include_archived)
    with UnitOfWork(scope) as uow:
        rows = repository.pipelines_page(uow.session, after_id=position.get("after"), limit=limit,
                                         include_archived=include_archived)
        more, rows = len(rows) > limit, rows[:limit]
        stages = repository.live_stages(uow.session, [p.id for p in rows])
        data = [_read(p, stages.get(p.id, [])) for p in rows]
    return PipelinePage(data=data, next_cursor=encode_cursor({"after": rows[-1].id, "a": include_archived}, secret)
                        if more else None)


def get_pipeline(scope: Scope, pipeline_id: str, *, include_archived: bool = False) -> tuple[PipelineRead, int]:
    with UnitOfWork(scope) as uow:
        pipeline = _pipeline_or_404(uow, pipeline_id, include_archived=include_archived)
        return _read_with_stages(uow, pipeline), pipeline.version


def create_pipeline(scope: Scope, data: PipelineCreate) -> tuple[PipelineRead, int]:
    with UnitOfWork(scope) as uow:
        read = _create(uow, data)
        version = uow.session.get(Pipeline, read.id).version  # type: ignore[union-attr]
        uow.commit()
    return read, version


def update_pipeline(
    scope: Scope, pipeline_id: str, data: PipelineUpdate, *, expected_version: int | None
) -> tuple[PipelineRead, int]:
    with UnitOfWork(scope) as uow:
        pipeline = _locked(uow, pipeline_id, expected_version)
        changed = False
        if data.name is not None and data.name != pipeline.name:
            pipeline.name = data.name
            changed = True
        if data.is_default and not pipeline.is_default:
            _make_default(uow, pipeline)
            changed = True
        return _finish(uow, pipeline, "updated" if changed else None)


def archive_pipeline(scope: Scope, pipeline_id: str, *, expected_version: int | None) -> None:
    with UnitOfWork(scope) as uow:
        pipeline = _locked(uow, pipeline_id, expected_version, include_archived=True)
        if pipeline.archived_at is not None:  # archiving twice is a no-op, so retries are safe
            return
        if pipeline.is_default:
            raise Conflict("the default pipeline cannot be archived; make another pipeline the default first")
        stage_ids = [s.id for s in repository.live_stages(uow.session, [pipeline.id]).get(pipeline.id, [])]
        held = _deals().count_in_stages(uow, stage_ids, include_archived=False) if stage_ids else 0
        if held:
            raise Conflict(f"the pipeline still holds {held} deal(s); move or archive them first",
                           extra={"deal_count": held})
        pipeline.archived_at = utcnow()
        _finish(uow, pipeline, "archived")


def restore_pipeline(scope: Scope, pipeline_id: str) -> tuple[PipelineRead, int]:
    with UnitOfWork(scope) as uow:
        pipeline = _locked(uow, pipeline_id, None, include_archived=True)
        event = None
        if pipeline.archived_at is not None:
            pipeline.archived_at = None
            event = "restored"
        return _finish(uow, pipeline, event)


# ---- stages -------------------------------------------------------------------------------------------
def add_stage(
    scope: Scope, pipeline_id: str, data: StageAdd, *, expected_version: int | None
) -> tuple[PipelineRead, int]:
    with UnitOfWork(scope) as uow:
        pipeline = _locked(uow, pipeline_id, expected_version)
        stages = _live_stages(uow, pipeline.id)
        if len(stages) >= rules.MAX_STAGES:
            raise ValidationFailed(f"a pipeline has at most {rules.MAX_STAGES} stages", errors=[
                {"field": "body", "message": "too many stages", "code": "max_stages"}])
        stage = Stage(id=new_id(), pipeline_id=pipeline.id, name=data.name, probability=data.probability,
                      kind=data.kind, position=len(stages), created_at=utcnow(), updated_at=utcnow())
        uow.session.add(stage)
        order = rules.insert_at([s.id for s in stages], stage.id, data.position)
        _renumber({s.id: s for s in [*stages, stage]}, order)
        return _finish(uow, pipeline, "updated")


def update_stage(
    scope: Scope, pipeline_id: str, stage_id: str, data: StageUpdate, *, expected_version: int | None
) -> tuple[PipelineRead, int]:
    with UnitOfWork(scope) as uow:
        pipeline = _locked(uow, pipeline_id, expected_version)
        stages = _live_stages(uow, pipeline.id)
        stage = _stage_or_404(stages, stage_id)
        changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if getattr(stage, k) != v}
        if "kind" in changes:
            # Deals in the stage were placed by the rules of its kind (closed date, lost reason).
            held = _deals().count_in_stages(uow, [stage.id], include_archived=True)
            if held:
                raise Conflict(f"the stage holds {held} deal(s); its kind can change only while it is empty",
                               extra={"deal_count": held})
            rules.require_open_stage([changes["kind"] if s.id == stage.id else s.kind for s in stages],
                                     field="kind")
        if not changes:
            return _finish(uow, pipeline, None)
        for key, value in changes.items():
            setattr(stage, key, value)
        stage.updated_at = utcnow()
        return _finish(uow, pipeline, "updated")


def reorder_stages(
    scope: Scope, pipeline_id: str, stage_ids: list[str], *, expected_version: int | None
) -> tuple[PipelineRead, int]:
    with UnitOfWork(scope) as uow:
        pipeline = _locked(uow, pipeline_id, expected_version)
        stages = _live_stages(uow, pipeline.id)
        order = rules.reordered([s.id for s in stages], stage_ids)
        if order == [s.id for s in stages]:
            return _finish(uow, pipeline, None)
        _renumber({s.id: s for s in stages}, order)
        return _finish(uow, pipeline, "updated")


def delete_stage(
    scope: Scope, pipeline_id: str, stage_id: str, *, move_deals_to: str | None, expected_version: int | None
) -> tuple[PipelineRead, int]:
    """Remove a stage. Its deals (archived ones too) move to `move_deals_to` in the same transaction,
    each move recorded as a stage change; without it a stage that still holds deals is a 409."""
    with UnitOfWork(scope) as uow:
        pipeline = _locked(uow, pipeline_id, expected_version)
        stages = _live_stages(uow, pipeline.id)
        stage = _stage_or_404(stages, stage_id)
        remaining = [s for s in stages if s.id != stage.id]
        rules.require_open_stage([s.kind for s in remaining], field="stage_id")
        target = None
        if move_deals_to is not None:
            target = next((s for s in remaining if s.id == move_deals_to), None)
            if target is None:
                raise ValidationFailed("move_deals_to must be another stage of this pipeline", errors=[
                    {"field": "query.move_deals_to", "message": "not another live stage of this pipeline",
                     "code": "reference"}])
        held = _deals().count_in_stages(uow, [stage.id], include_archived=True)
        if held and target is None:
            raise Conflict(f"the stage still holds {held} deal(s); name the stage they move to with "
                           "?move_deals_to=<stage_id>", extra={"deal_count": held})
        if held and target is not None:
            _deals().move_stage_deals(uow, _info(stage), _info(target))
        stage.archived_at = stage.updated_at = utcnow()
        _renumber({s.id: s for s in remaining}, [s.id for s in remaining])
        return _finish(uow, pipeline, "updated")


# ---- helpers ------------------------------------------------------------------------------------------
def _create(uow: UnitOfWork, data: PipelineCreate) -> PipelineRead:
    rules.require_open_stage([s.kind for s in data.stages], field="stages")
    now = utcnow()
    pipeline = Pipeline(id=new_id(), name=data.name, is_default=False, created_at=now, updated_at=now)
    uow.session.add(pipeline)
    stages = [Stage(id=new_id(), pipeline_id=pipeline.id, name=s.name, probability=s.probability, kind=s.kind,
                    position=i, created_at=now, updated_at=now) for i, s in enumerate(data.stages)]
    uow.session.add_all(stages)
    # The workspace's first live pipeline is its default, asked for or not: new deals need one.
    if data.is_default or repository.default_pipeline(uow.session) is None:
        _make_default(uow, pipeline)
    uow.session.flush()
    read = _read(pipeline, stages)
    emit(uow, event_type="pipeline.created", object_type="pipelines", record_id=pipeline.id,
         data={"object": read.model_dump(mode="json")})
    return read


def _make_default(uow: UnitOfWork, pipeline: Pipeline) -> None:
    for other in repository.other_defaults(uow.session, pipeline.id):
        other.is_default = False
        other.updated_at = utcnow()
        uow.session.flush()
        emit(uow, event_type="pipeline.updated", object_type="pipelines", record_id=other.id,
             data={"object": _read_with_stages(uow, other).model_dump(mode="json")})
    pipeline.is_default = True


def _finish(uow: UnitOfWork, pipeline: Pipeline, event: str | None) -> tuple[PipelineRead, int]:
    """Bump the pipeline's version (its stages are part of it), emit the event, commit, answer."""
    if event is not None:
        pipeline.updated_at = utcnow()
        uow.flush("pipeline")
    read = _read_with_stages(uow, pipeline)
    if event is not None:
        emit(uow, event_type=f"pipeline.{event}", object_type="pipelines", record_id=pipeline.id,
             data={"object": read.model_dump(mode="json")})
    version = pipeline.version
    uow.commit()
    return read, version


def _locked(uow: UnitOfWork, pipeline_id: str, expected_version: int | None, *,
            include_archived: bool = False) -> Pipeline:
    pipeline = repository.pipeline(uow.session, pipeline_id, lock=True)
    if pipeline is None or (pipeline.archived_at is not None and not include_archived):
        raise NotFound(f"no pipeline with id {pipeline_id}")
    uow.require_version(pipeline, expected_version, "pipeline")
    return pipeline


def _pipeline_or_404(uow: UnitOfWork, pipeline_id: str, *, include_archived: bool) -> Pipeline:
    pipeline = repository.pipeline(uow.session, pipeline_id)
    if pipeline is None or (pipeline.archived_at is not None and not include_archived):
        raise NotFound(f"no pipeline with id {pipeline_id}")
    return pipeline


def _live_stages(uow: UnitOfWork, pipeline_id: str) -> list[Stage]:
    return repository.live_stages(uow.session, [pipeline_id]).get(pipeline_id, [])


def _stage_or_404(stages: list[Stage], stage_id: str) -> Stage:
    stage = next((s for s in stages if s.id == stage_id), None)
    if stage is None:
        raise NotFound(f"no stage {stage_id} in this pipeline")
    return stage


def _renumber(by_id: dict[str, Stage], order: list[str]) -> None:
    for position, stage_id in enumerate(order):
        stage = by_id[stage_id]
        if stage.position != position:
            stage.position = position
            stage.updated_at = utcnow()


def _read_with_stages(uow: UnitOfWork, pipeline: Pipeline) -> PipelineRead:
    return _read(pipeline, _live_stages(uow, pipeline.id))


def _read(pipeline: Pipeline, stages: list[Stage]) -> PipelineRead:
    live = sorted((s for s in stages if s.archived_at is None), key=lambda s: (s.position, s.id))
    return PipelineRead(id=pipeline.id, name=pipeline.name, is_default=pipeline.is_default,
                        stages=[StageRead.model_validate(s) for s in live], created_at=pipeline.created_at,
                        updated_at=pipeline.updated_at, archived_at=pipeline.archived_at)


def _info(stage: Stage) -> StageInfo:
    return StageInfo(id=stage.id, pipeline_id=stage.pipeline_id, name=stage.name, position=stage.position,
                     probability=stage.probability, kind=stage.kind)
