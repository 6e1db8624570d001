"""Automation use cases: manage rules, run them on events and schedules, record every run, retry.

How a run is kept. A rule met by an event acts in one unit of work with the chain scope (the event's
causation plus the rule): its actions are all-or-nothing, and on success the run row, the rule's mark and
the idempotency receipt commit with the effects. When an action fails, that unit of work is rolled back
(no half-done run) and the run is written, failed, in a transaction of its own with the failing step and
its error, so a failure is never silent. Per-step savepoints were not chosen: a rule is "when X, do A
then B", and a task created without its tag is a state nobody asked for.

Idempotency is per (event, rule), not per event: each rule's run commits on its own, so a redelivered
event runs only the rules whose run did not commit (`first_time` in each run's transaction).

Loops. Actions run with `causation = event.causation + (rule.id,)`, so every event they emit names the
chain; a rule that meets an event it is already in the chain of (or a chain of MAX_CHAIN rules) records a
`loop_stopped` run and does nothing.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select

from functions.automations import repository, rules
from functions.automations.errors import ActionFailed, RunNotRetriable
from functions.automations.models import AutomationRule, AutomationRun
from functions.automations.schemas import (
    Action,
    AddTag,
    AutomationCreate,
    AutomationRead,
    AutomationUpdate,
    Conditions,
    CreateTask,
    DryRunResult,
    DryRunStep,
    EnqueueJob,
    EventJob,
    RetryRunJob,
    RunRead,
    RunScheduleJob,
    SendWebhook,
    Trigger,
    UpdateField,
)
from functions.pipelines import service as pipelines
from functions.workspaces.service import members_among
from layers.db.uow import UnitOfWork
from layers.http.requests import page_json, validate
from layers.queue.jobs import enqueue, first_time
from layers.records import custom
from layers.records.search import SearchRequest
from layers.records.service import RecordService, RecordView, service_for
from shared.clock import isoformat, utcnow
from shared.context import Scope, system_scope
from shared.cursors import id_page, id_position
from shared.errors import AppError, NotFound, ValidationFailed
from shared.ids import new_id
from shared.normalize import normalize_tags
from shared.settings import get_settings

KnownJobs = frozenset[str] | None  # the app's job handler names; None when they cannot be known
_ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])
_SCHEDULE_SWEEP_LIMIT = 100  # due rules one sweep claims; the rest are claimed a minute later
_SEARCH_PAGE = 200


# ---- manage ---------------------------------------------------------------------------------------------
def list_rules(scope: Scope, *, status: str | None, object_type: str | None, limit: int, cursor: str | None) -> str:
    secret = get_settings().cursor_secret
    query = f"{status}|{object_type}"
    after = id_position(cursor, secret, query=query, direction="after")
    with UnitOfWork(scope) as uow:
        rows = repository.page(uow, status=status, object_type=object_type, after_id=after, limit=limit)
    rows, next_cursor = id_page(rows, limit=limit, secret=secret, query=query, direction="after")
    return page_json((_dump(row) for row in rows), next_cursor)


def get_rule(scope: Scope, rule_id: str) -> RecordView:
    with UnitOfWork(scope) as uow:
        return _view(_load(uow, rule_id))


def create_rule(scope: Scope, data: AutomationCreate, *, known_jobs: KnownJobs) -> RecordView:
    with UnitOfWork(scope) as uow:
        _check_rule(uow, data.object_type, data.trigger, data.conditions, data.actions, known_jobs)
        now = utcnow()
        row = AutomationRule(
            id=new_id(), name=data.name, object_type=data.object_type, trigger_type=data.trigger.type,
            trigger=data.trigger.model_dump(exclude_none=True), conditions=_conditions_json(data.conditions),
            actions=[a.model_dump(mode="json") for a in data.actions], status="active", consecutive_failures=0,
            next_run_at=_first_run(data.trigger, now), created_at=now, updated_at=now)
        uow.session.add(row)
        uow.session.flush()
        view = _view(row)
        uow.commit()
    return view


def update_rule(
    scope: Scope, rule_id: str, data: AutomationUpdate, *, expected_version: int | None, known_jobs: KnownJobs
) -> RecordView:
    changes = data.model_dump(exclude_unset=True)
    for name in ("name", "trigger", "actions"):
        if name in changes and changes[name] is None:
            raise ValidationFailed(f"{name} cannot be null", errors=[
                {"field": name, "message": "cannot be null", "code": "null"}])
    with UnitOfWork(scope) as uow:
        row = _load(uow, rule_id, expected_version=expected_version)
        trigger = data.trigger if data.trigger is not None else Trigger.model_validate(row.trigger)
        conditions = data.conditions if "conditions" in changes else _stored_conditions(row)
        actions = data.actions if data.actions is not None else _ACTIONS.validate_python(row.actions)
        _check_rule(uow, row.object_type, trigger, conditions, actions, known_jobs)
        if data.name is not None:
            row.name = data.name
        if data.trigger is not None:
            row.trigger, row.trigger_type = trigger.model_dump(exclude_none=True), trigger.type
            row.next_run_at = _first_run(trigger, utcnow())
        if "conditions" in changes:
            row.conditions = _conditions_json(conditions)
        if data.actions is not None:
            row.actions = [a.model_dump(mode="json") for a in actions]
        row.updated_at = utcnow()
        uow.flush("automation")
        view = _view(row)
        uow.commit()
    return view


def delete_rule(scope: Scope, rule_id: str, *, expected_version: int | None) -> None:
    """Archive the rule: it stops at once; its runs stay stored (they are what happened)."""
    with UnitOfWork(scope) as uow:
        row = _load(uow, rule_id, expected_version=expected_version)
        row.archived_at = row.updated_at = utcnow()
        uow.commit()


def pause_rule(scope: Scope, rule_id: str) -> RecordView:
    with UnitOfWork(scope) as uow:
        row = _load(uow, rule_id)
        if row.status != "paused":
            row.status, row.paused_reason, row.updated_at = "paused", "paused by an admin", utcnow()
            uow.session.flush()
        view = _view(row)
        uow.commit()
    return view


def resume_rule(scope: Scope, rule_id: str) -> RecordView:
    """Active again with a clean failure count; a schedule fires next from now (missed firings are not
    caught up: a rule paused for a week must not fire a week's worth at once)."""
    with UnitOfWork(scope) as uow:
        row = _load(uow, rule_id)
        if row.status != "active":
            now = utcnow()
            row.status, row.paused_reason, row.consecutive_failures, row.updated_at = "active", None, 0, now
            row.next_run_at = _first_run(Trigger.model_validate(row.trigger), now)
            uow.session.flush()
        view = _view(row)
        uow.commit()
    return view


# ---- runs -----------------------------------------------------------------------------------------------
def list_runs(scope: Scope, rule_id: str, *, status: str | None, limit: int, cursor: str | None) -> str:
    secret = get_settings().cursor_secret
    query = f"{rule_id}|{status}"
    before = id_position(cursor, secret, query=query, direction="before")
    with UnitOfWork(scope) as uow:
        _load(uow, rule_id)
        rows = repository.runs_page(uow, rule_id, status=status, before_id=before, limit=limit)
    rows, next_cursor = id_page(rows, limit=limit, secret=secret, query=query, direction="before")
    return page_json((_dump_run(row) for row in rows), next_cursor)


def get_run(scope: Scope, rule_id: str, run_id: str) -> str:
    with UnitOfWork(scope) as uow:
        return _dump_run(_load_run(uow, rule_id, run_id))


def retry_run(scope: Scope, rule_id: str, run_id: str) -> str:
    """Queue another attempt of a failed run: the same run, `attempt` + 1, the earlier attempt kept in
    `previous_attempts`. The job is sent only if this marking commits."""
    with UnitOfWork(scope) as uow:
        _load(uow, rule_id)
        run = _load_run(uow, rule_id, run_id)
        if run.status != "failed":
            raise RunNotRetriable(f"the run is {run.status}; only a failed run can be retried")
        run.previous_attempts = [*run.previous_attempts, {
            "attempt": run.attempt, "status": run.status, "error": run.error, "steps": run.steps,
            "started_at": isoformat(run.started_at), "finished_at": isoformat(run.finished_at)}]
        run.status, run.error, run.steps, run.attempt = "retrying", None, [], run.attempt + 1
        run.started_at, run.finished_at = utcnow(), None
        enqueue(uow, "automations_retry_run", RetryRunJob(workspace_id=scope.workspace_id, rule_id=rule_id,
                                                          run_id=run_id))
        body = _dump_run(run)
        uow.commit()
    return body


def dry_run(scope: Scope, rule_id: str, record_id: str, *, known_jobs: KnownJobs) -> DryRunResult:
    """Would the rule act on this record now, and what would each action do? The actions are rehearsed
    in a unit of work that is never committed, so their own checks run and nothing is written."""
    with UnitOfWork(scope) as uow:
        rule = _load(uow, rule_id)
    records = _records(rule.object_type)
    records.get(scope, record_id)  # 404 unless the caller may see the record
    chain = system_scope(scope.workspace_id, source="automation", request_id=scope.request_id,
                         causation=(rule.id,))
    with UnitOfWork(chain) as uow:
        if not records.matches(uow, record_id, _groups(rule)):
            return DryRunResult(record_id=record_id, matched=False, steps=[])
        event = _scheduled_event(rule, record_id, "dry-run")
        outcome = _act(uow, rule, record_id, event, known_jobs)
        # leaving the block rolls the rehearsal back
    return DryRunResult(record_id=record_id, matched=True, steps=[
        DryRunStep(index=s["index"], action=s["action"], status=s["status"], would=s.get("result"),
                   error=s.get("error")) for s in outcome.steps])


# ---- the engine (job and schedule handlers call these) ---------------------------------------------------
def event_types_with_rules(pending: Mapping[str, set[str]]) -> set[tuple[str, str]]:
    """Of the pending (workspace, event type) pairs, those an active rule of that workspace listens to: the
    relay sends only their events here, as it sends the webhooks fan-out only the types subscribed to. A
    workspace with one `deal.stage_changed` rule costs no job per contact event (an import's thousands)."""
    if not pending:
        return set()
    with UnitOfWork(unscoped=True) as uow:
        triggers = repository.event_triggers(uow, set(pending))
    return rules.interest(triggers, pending)


def evaluate(event: EventJob, *, known_jobs: KnownJobs) -> int:
    """Run every active rule of the workspace the event meets; the number of runs recorded."""
    object_type = rules.object_type_of(event.type)
    if object_type is None or service_for(object_type) is None:
        return 0  # an event of something rules are not written for (teams, pipelines, ...)
    with UnitOfWork(system_scope(event.workspace_id, source="automation")) as uow:
        candidates = [rule for rule in repository.active_event_rules(uow, object_type)
                      if rules.trigger_matches(object_type, rule.trigger, event.type, event.data)]
    body = event.model_dump(mode="json")
    ran = 0
    for rule in candidates:
        ran += _run_once(rule, record_id=event.record_id, event_id=event.id, trigger=body,
                         causation=tuple(event.causation), key=f"automations_evaluate:{event.id}:{rule.id}",
                         known_jobs=known_jobs)
    return ran


def retry(job: RetryRunJob, *, known_jobs: KnownJobs) -> str | None:
    """Another attempt of a run an admin asked to retry; its new status (None when there is nothing to do)."""
    with UnitOfWork(system_scope(job.workspace_id, source="automation")) as uow:
        run = repository.get_run(uow, job.rule_id, job.run_id)
        rule = repository.get(uow, job.rule_id)
    if run is None or run.status != "retrying":
        return None  # a redelivered job: the attempt it was sent for has been made
    key = f"automations_retry_run:{run.id}:{run.attempt}"
    causation = tuple(run.trigger.get("causation") or ())
    if rule is None:
        return _finish_failed(job.workspace_id, job.rule_id, run.id, key, _Outcome(
            [], "the rule was deleted"), count=False)
    chain = system_scope(job.workspace_id, source="automation", causation=(*causation, rule.id))
    with UnitOfWork(chain) as uow:
        if not first_time(uow, key):
            return None
        outcome = _act(uow, rule, run.record_id or "", run.trigger, known_jobs)
        if outcome.error is None:
            row = repository.get_run(uow, rule.id, run.id)
            assert row is not None
            row.status, row.steps, row.error, row.finished_at = "succeeded", outcome.steps, None, utcnow()
            repository.note_run(uow, rule.id, status="succeeded", consecutive_failures=0)
            uow.commit()
            return "succeeded"
    return _finish_failed(job.workspace_id, rule.id, run.id, key, outcome, count=True)


def sweep_schedules(*, now: datetime | None = None) -> int:
    """Claim each due schedule rule's firing (moving next_run_at on) and send one job per firing; the
    number of firings claimed. Two sweeps at once cannot both claim one: the move is compare-and-set."""
    now = now or utcnow()
    with UnitOfWork(unscoped=True) as uow:
        due = [(r.id, r.workspace_id, r.next_run_at, r.trigger.get("schedule", ""))
               for r in repository.due_schedule_rules(uow, now, limit=_SCHEDULE_SWEEP_LIMIT)]
    claimed = 0
    for rule_id, workspace_id, due_at, expression in due:
        assert due_at is not None
        with UnitOfWork(system_scope(workspace_id, source="automation")) as uow:
            if repository.claim_firing(uow, rule_id, due_at, rules.next_run(expression, now)):
                enqueue(uow, "automations_fire_schedule", RunScheduleJob(
                    workspace_id=workspace_id, rule_id=rule_id, due_at=isoformat(due_at) or ""))
                uow.commit()
                claimed += 1
    return claimed


def run_schedule(job: RunScheduleJob, *, known_jobs: KnownJobs) -> int:
    """One firing of a schedule rule: a run for each record meeting its conditions, at most
    SCHEDULE_CAP records (keyset pages of the search), stopping if the rule gets paused meanwhile."""
    scope = system_scope(job.workspace_id, source="automation")
    with UnitOfWork(scope) as uow:
        rule = repository.get(uow, job.rule_id)
    if rule is None or rule.status != "active":
        return 0
    records = _records(rule.object_type)
    ran = 0
    for record_id in _matching_ids(records, scope, rule):
        ran += _run_once(rule, record_id=record_id, event_id=None,
                         trigger=_scheduled_event(rule, record_id, job.due_at), causation=(),
                         key=f"automations_fire_schedule:{rule.id}:{job.due_at}:{record_id}",
                         known_jobs=known_jobs, conditions_checked=True)
        with UnitOfWork(scope) as uow:
            current = repository.get(uow, rule.id)
        if current is None or current.status != "active":
            break
    return ran


# ---- one run --------------------------------------------------------------------------------------------
@dataclass
class _Outcome:
    steps: list[dict[str, Any]]
    error: str | None = None


def _run_once(
    rule: AutomationRule, *, record_id: str, event_id: str | None, trigger: dict[str, Any],
    causation: tuple[str, ...], key: str, known_jobs: KnownJobs, conditions_checked: bool = False,
) -> int:
    """Run one rule on one record and record it; 1 if a run was recorded, 0 if this one was done before."""
    chain = system_scope(rule.workspace_id, source="automation", causation=(*causation, rule.id))
    run = AutomationRun(id=new_id(), rule_id=rule.id, event_id=event_id, record_id=record_id,
                        trigger_type=rule.trigger_type, trigger=trigger, steps=[], attempt=1,
                        previous_attempts=[], started_at=utcnow())
    with UnitOfWork(chain) as uow:
        if not first_time(uow, key):
            return 0
        stopped = rules.loop_reason(rule.id, list(causation))
        records = _records(rule.object_type)
        if stopped is not None:
            _record(uow, run, "loop_stopped", detail=stopped)
        elif not _exists(uow, records, record_id):
            _record(uow, run, "skipped", detail="the record no longer exists")
        elif not conditions_checked and not records.matches(uow, record_id, _groups(rule)):
            _record(uow, run, "skipped", detail="the record does not meet the conditions")
        else:
            outcome = _act(uow, rule, record_id, trigger, known_jobs)
            if outcome.error is not None:
                uow.session.rollback()  # not one of the run's effects is kept
                return _record_failure(rule, run, key, outcome)
            run.steps = outcome.steps
            _record(uow, run, "succeeded")
        uow.commit()
    return 1


def _record(uow: UnitOfWork, run: AutomationRun, status: str, *, detail: str | None = None) -> None:
    run.status, run.detail, run.finished_at = status, detail, utcnow()
    uow.session.add(run)
    if status != "skipped":  # a skip is not news about the rule; it would only contend for its row
        repository.note_run(uow, run.rule_id, status=status,
                            consecutive_failures=0 if status == "succeeded" else None)


def _record_failure(rule: AutomationRule, run: AutomationRun, key: str, outcome: _Outcome) -> int:
    with UnitOfWork(system_scope(rule.workspace_id, source="automation")) as uow:
        if not first_time(uow, key):
            return 0
        run.steps, run.error = outcome.steps, outcome.error
        uow.session.add(run)
        run.status, run.finished_at = "failed", utcnow()
        _count_failure(uow, rule.id, outcome.error or "")
        uow.commit()
    return 1


def _finish_failed(workspace_id: str, rule_id: str, run_id: str, key: str, outcome: _Outcome, *, count: bool) -> str:
    with UnitOfWork(system_scope(workspace_id, source="automation")) as uow:
        row = repository.get_run(uow, rule_id, run_id)
        if row is None or not first_time(uow, key):
            return "failed"
        row.status, row.steps, row.error, row.finished_at = "failed", outcome.steps, outcome.error, utcnow()
        if count:
            _count_failure(uow, rule_id, outcome.error or "")
        uow.commit()
    return "failed"


def _count_failure(uow: UnitOfWork, rule_id: str, error: str) -> None:
    failures = repository.add_failure(uow, rule_id)
    reason = rules.pause_reason(failures, error)
    if reason is not None:
        repository.pause(uow, rule_id, reason)


def _act(
    uow: UnitOfWork, rule: AutomationRule, record_id: str, event: dict[str, Any], known_jobs: KnownJobs
) -> _Outcome:
    """Each action in order; at the first failure the rest are skipped and the outcome names the error
    (the caller rolls back). Only typed errors are a run's failure: anything else (the database gone)
    is transient and raises, so the queue retries the job."""
    steps: list[dict[str, Any]] = []
    actions = _ACTIONS.validate_python(rule.actions)
    for index, action in enumerate(actions):
        try:
            result = _PERFORM[action.type](_Step(uow, rule, record_id, event, index, known_jobs), action)
        except AppError as error:
            message = _describe(error)
            steps.append({"index": index, "action": action.type, "status": "failed", "result": None,
                          "error": message})
            steps.extend({"index": later, "action": actions[later].type, "status": "skipped", "result": None,
                          "error": None} for later in range(index + 1, len(actions)))
            return _Outcome(steps, f"step {index} ({action.type}): {message}")
        steps.append({"index": index, "action": action.type, "status": "ok", "result": result, "error": None})
    return _Outcome(steps)


# ---- actions: other capabilities only through their services --------------------------------------------
@dataclass(frozen=True)
class _Step:
    uow: UnitOfWork
    rule: AutomationRule
    record_id: str
    event: dict[str, Any]
    index: int
    known_jobs: KnownJobs


def _create_task(step: _Step, action: Any) -> dict[str, Any]:
    assert isinstance(action, CreateTask)
    records = _records(step.rule.object_type)
    owner: str | None = action.owner
    if owner == "record_owner":
        owner = getattr(records._load(step.uow, step.record_id, include_archived=False), "owner_id", None)
        if owner is None:
            raise ActionFailed("the record has no owner to assign the task to")
    values: dict[str, Any] = {"kind": "task", "subject": action.subject, "owner_id": owner}
    if action.due_in_days is not None:
        values["due_at"] = isoformat(utcnow() + timedelta(days=action.due_in_days))
    if step.rule.object_type in rules.TASK_LINKS:
        values["links"] = {step.rule.object_type: [step.record_id]}
    tasks = _records("activities")
    data = validate(tasks.spec.create_schema, values, prefix=("actions", step.index))
    # _create is the record service's step inside a caller's unit of work (the public create opens and
    # commits its own): the task must commit or roll back with the rest of the run.
    view = tasks._create(step.uow, data.model_dump())
    return {"task_id": view.id}


def _update_field(step: _Step, action: Any) -> dict[str, Any]:
    assert isinstance(action, UpdateField)
    records = _records(step.rule.object_type)
    data = validate(records.spec.update_schema, _field_values(action.field, action.value),
                    prefix=("actions", step.index))
    view = records._update(step.uow, step.record_id, data.model_dump(exclude_unset=True), None)
    return {"field": action.field, "value": action.value, "version": view.version}


def _add_tag(step: _Step, action: Any) -> dict[str, Any]:
    assert isinstance(action, AddTag)
    records = _records(step.rule.object_type)
    row = records._load(step.uow, step.record_id, include_archived=False)
    tags = list(getattr(row, "tags", None) or [])
    if action.tag.lower() in {t.lower() for t in tags}:
        return {"tag": action.tag, "added": False}
    data = validate(records.spec.update_schema, {"tags": [*tags, action.tag]}, prefix=("actions", step.index))
    view = records._update(step.uow, step.record_id, data.model_dump(exclude_unset=True), None)
    return {"tag": action.tag, "added": True, "version": view.version}


def _send_webhook(step: _Step, action: Any) -> dict[str, Any]:
    assert isinstance(action, SendWebhook)
    # Imported here: webhooks is another capability, needed only by this action (and it imports records).
    from functions.webhooks.service import schedule_delivery

    delivery_id = schedule_delivery(step.uow, subscription_id=action.subscription_id, event=step.event)
    return {"subscription_id": action.subscription_id, "delivery_id": delivery_id}


def _enqueue_job(step: _Step, action: Any) -> dict[str, Any]:
    assert isinstance(action, EnqueueJob)
    if step.known_jobs is not None and action.handler not in step.known_jobs:
        raise ActionFailed(f"no job handler named {action.handler!r}")
    if action.payload.get("workspace_id", step.rule.workspace_id) != step.rule.workspace_id:
        # Refused when the rule is written; a rule stored before that check must not reach another workspace.
        raise ActionFailed("the job's payload names another workspace")
    return {"handler": action.handler, "job_id": enqueue(step.uow, action.handler, dict(action.payload))}


_PERFORM: dict[str, Callable[[_Step, Any], dict[str, Any]]] = {
    "create_task": _create_task, "update_field": _update_field, "add_tag": _add_tag,
    "send_webhook": _send_webhook, "enqueue_job": _enqueue_job,
}


# ---- checks at registration -----------------------------------------------------------------------------
def _check_rule(
    uow: UnitOfWork, object_type: str, trigger: Trigger, conditions: Conditions | None, actions: list[Any],
    known_jobs: KnownJobs,
) -> None:
    records = _records(object_type)
    if trigger.type == "deal_stage_changed" and object_type != "deals":
        raise _invalid("trigger.type", "deal_stage_changed is a trigger of deals", "trigger")
    if trigger.type == "field_changed" and not _known_property(records, trigger.field or ""):
        raise _invalid("trigger.field", f"not a property of {object_type}", "unknown_field")
    if trigger.type == "schedule":
        try:
            rules.check_schedule(trigger.schedule or "")
        except ValueError as exc:
            raise _invalid("trigger.schedule", str(exc), "schedule") from None
    if conditions is not None and conditions.filter_groups:
        try:
            records.check_filter(uow, conditions.filter_groups)
        except ValidationFailed as error:  # the search names its own fields; here they sit under `conditions`
            raise ValidationFailed(error.detail, errors=[
                {**e, "field": f"conditions.{e.get('field')}"} for e in (error.errors or [])]) from None
    for index, action in enumerate(actions):
        where = f"actions.{index}"
        if isinstance(action, UpdateField):
            _check_update_field(uow, records, action, where)
        elif isinstance(action, AddTag):
            if object_type not in rules.TAGGED:
                raise _invalid(f"{where}.type", f"{object_type} records have no tags", "action")
            try:
                normalize_tags([action.tag])
            except ValueError as exc:
                raise _invalid(f"{where}.tag", str(exc), "value") from None
        elif isinstance(action, EnqueueJob):
            if action.handler.startswith("automations_"):
                raise _invalid(f"{where}.handler", "the engine's own jobs cannot be enqueued by a rule", "handler")
            if known_jobs is not None and action.handler not in known_jobs:
                raise _invalid(f"{where}.handler", "no job handler has this name", "handler")
    _check_references(uow, rules.references(
        object_type, trigger.model_dump(exclude_none=True), _conditions_json(conditions),
        [a.model_dump(mode="json") for a in actions]))


def _check_references(uow: UnitOfWork, references: list[rules.Reference]) -> None:
    """422 naming every id of the rule that names nothing of this workspace (another workspace's record,
    a deleted one, or none at all). Each kind is looked up through its capability in the caller's unit of
    work, so tenancy decides: another workspace's id is simply not found."""
    by_kind: dict[str, set[str]] = {}
    for reference in references:
        by_kind.setdefault(reference.kind, set()).add(reference.id)
    found = {kind: _existing(uow, kind, ids) for kind, ids in by_kind.items()}
    missing = [r for r in references if r.id not in found[r.kind]]
    if not missing:
        return
    detail = (f"{missing[0].field}: {_missing(missing[0].kind)}" if len(missing) == 1
              else f"{len(missing)} ids of the rule name nothing of this workspace")
    raise ValidationFailed(detail, errors=[{"field": r.field, "message": _missing(r.kind), "code": "reference"}
                                           for r in missing])


def _missing(kind: str) -> str:
    if kind == rules.MEMBER:
        return "not a member of this workspace"
    if kind == rules.WORKSPACE:
        return "not this workspace: a rule's jobs run in the rule's own workspace"
    noun = {rules.PIPELINE: "pipeline", rules.STAGE: "stage", rules.WEBHOOK: "webhook"}.get(kind) or \
        _records(kind).spec.event_name
    return f"no {noun} of this workspace has this id" + ("" if kind == rules.WEBHOOK else " (live ones only)")


def _existing(uow: UnitOfWork, kind: str, ids: set[str]) -> set[str]:
    """Of these ids, those naming a thing of `kind` in the uow's workspace."""
    # Imported here: webhooks is another capability, needed only for this check (and it imports records).
    from functions.webhooks.service import subscriptions_among

    if kind == rules.MEMBER:
        return members_among(uow, sorted(ids))
    if kind == rules.WEBHOOK:
        return subscriptions_among(uow, sorted(ids))
    if kind == rules.PIPELINE:
        return {i for i in ids if pipelines.is_live(uow, i)}
    if kind == rules.STAGE:
        return {i for i in ids if pipelines.get_stage(uow, i) is not None}
    if kind == rules.WORKSPACE:
        return {i for i in ids if uow.scope is not None and i == uow.scope.workspace_id}
    model = _records(kind).spec.model
    return set(uow.session.scalars(select(model.id).where(model.id.in_(sorted(ids)), model.archived_at.is_(None))))


def _check_update_field(uow: UnitOfWork, records: RecordService, action: UpdateField, where: str) -> None:
    schema = records.spec.update_schema
    if action.field.startswith("custom_fields."):
        if not records.spec.custom_fields:
            raise _invalid(f"{where}.field", "this object has no custom fields", "unknown_field")
        custom.validate_values(uow, records.spec.object_type, {action.field.removeprefix("custom_fields."):
                                                              action.value}, creating=False, current={})
        return
    if action.field not in schema.model_fields or action.field in ("custom_fields", "links"):
        raise _invalid(f"{where}.field", "not a writable property", "unknown_field")
    validate(schema, _field_values(action.field, action.value), prefix=(where,))


def _known_property(records: RecordService, name: str) -> bool:
    if name.startswith("custom_fields."):
        return records.spec.custom_fields
    return name in records.spec.read_schema.model_fields


# ---- helpers --------------------------------------------------------------------------------------------
def _records(object_type: str) -> RecordService:
    records = service_for(object_type)
    assert records is not None, f"no record service for {object_type}"
    return records


def _exists(uow: UnitOfWork, records: RecordService, record_id: str) -> bool:
    row = uow.session.get(records.spec.model, record_id)
    return row is not None and row.archived_at is None


def _matching_ids(records: RecordService, scope: Scope, rule: AutomationRule) -> list[str]:
    """Ids of live records meeting the rule's conditions, by the search's keyset pages, capped."""
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < rules.SCHEDULE_CAP:
        page = json.loads(records.search(scope, SearchRequest(
            filter_groups=_groups(rule), limit=min(_SEARCH_PAGE, rules.SCHEDULE_CAP - len(ids)), cursor=cursor)))
        ids.extend(str(item["id"]) for item in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return ids


def _groups(rule: AutomationRule) -> list[Any]:
    conditions = _stored_conditions(rule)
    return conditions.filter_groups if conditions is not None else []


def _stored_conditions(row: AutomationRule) -> Conditions | None:
    return Conditions.model_validate(row.conditions) if row.conditions else None


def _conditions_json(conditions: Conditions | None) -> dict[str, Any] | None:
    return conditions.model_dump(mode="json", exclude_none=True) if conditions is not None else None


def _field_values(field: str, value: Any) -> dict[str, Any]:
    if field.startswith("custom_fields."):
        return {"custom_fields": {field.removeprefix("custom_fields."): value}}
    return {field: value}


def _first_run(trigger: Trigger, now: datetime) -> datetime | None:
    return rules.next_run(trigger.schedule, now) if trigger.type == "schedule" and trigger.schedule else None


def _scheduled_event(rule: AutomationRule, record_id: str, due_at: str) -> dict[str, Any]:
    """What a scheduled run acts on, in the event shape (a webhook action delivers it)."""
    return {"id": new_id(), "type": "automation.scheduled", "object_type": rule.object_type,
            "record_id": record_id, "workspace_id": rule.workspace_id, "occurred_at": isoformat(utcnow()),
            "causation": [], "data": {"rule_id": rule.id, "schedule": rule.trigger.get("schedule"),
                                      "due_at": due_at}}


def _load(uow: UnitOfWork, rule_id: str, *, expected_version: int | None = None) -> AutomationRule:
    row = repository.get(uow, rule_id)
    if row is None:
        raise NotFound(f"no automation with id {rule_id}")
    uow.require_version(row, expected_version, "automation")
    return row


def _load_run(uow: UnitOfWork, rule_id: str, run_id: str) -> AutomationRun:
    run = repository.get_run(uow, rule_id, run_id)
    if run is None:
        raise NotFound(f"no run {run_id} of automation {rule_id}")
    return run


def _describe(error: AppError) -> str:
    fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in (error.errors or []))
    return f"{error.detail} ({fields})" if fields else error.detail


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message, "code": code}])


def _dump(row: AutomationRule) -> str:
    return AutomationRead.model_validate(row).model_dump_json()


def _view(row: AutomationRule) -> RecordView:
    return RecordView(row.id, row.version, row.archived_at is not None, _dump(row))


def _dump_run(row: AutomationRun) -> str:
    return RunRead.model_validate(row).model_dump_json()

