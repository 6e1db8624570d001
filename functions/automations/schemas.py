"""Automation schemas: AutomationCreate / AutomationUpdate / AutomationRead / AutomationPage, runs, job payloads."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from layers.records.search import FilterGroup
from shared.objects import plural_object_type
from shared.schemas import Omittable, Page, ReadModel, RecordId, StrictModel

ObjectType = Annotated[Literal["contacts", "companies", "deals", "activities"],
                      plural_object_type("contacts", "companies", "deals", "activities")]
TriggerType = Literal["record_created", "record_updated", "field_changed", "deal_stage_changed", "schedule"]
RuleStatus = Literal["active", "paused"]
RunStatus = Literal["succeeded", "failed", "loop_stopped", "skipped", "retrying"]
StepStatus = Literal["ok", "failed", "skipped"]
Id = RecordId
HANDLER_PATTERN = r"^[a-z]+_[a-z_]+$"


class Trigger(StrictModel):
    type: TriggerType
    field: str | None = Field(None, min_length=1, max_length=100, description="field_changed: the property "
                              "(`custom_fields.<key>` for a custom field)")
    to_stage_id: Id | None = Field(None, description="deal_stage_changed: only moves into this stage")
    from_stage_id: Id | None = Field(None, description="deal_stage_changed: only moves out of this stage")
    schedule: str | None = Field(None, max_length=100, description="schedule: `rate(N minutes|hours|days)` or an "
                                 "AWS `cron(min hour day-of-month month day-of-week year)` (UTC)")

    @model_validator(mode="after")
    def _parameters_of_its_type(self) -> Trigger:
        wanted = {"field_changed": {"field"}, "deal_stage_changed": {"to_stage_id", "from_stage_id"},
                  "schedule": {"schedule"}}.get(self.type, set())
        given = {name for name in ("field", "to_stage_id", "from_stage_id", "schedule") if getattr(self, name)}
        if given - wanted:
            raise ValueError(f"{self.type} takes no {', '.join(sorted(given - wanted))}")
        if self.type == "field_changed" and not self.field:
            raise ValueError("field_changed needs `field`")
        if self.type == "schedule" and not self.schedule:
            raise ValueError("schedule needs `schedule`")
        return self


class Conditions(StrictModel):
    filter_groups: list[FilterGroup] = Field(default_factory=list, max_length=5,
                                             description="The search filter language: OR of AND-groups")


class CreateTask(StrictModel):
    type: Literal["create_task"]
    subject: str = Field(min_length=1, max_length=255)
    due_in_days: int | None = Field(None, ge=0, le=3650, strict=True)
    owner: str = Field("record_owner", min_length=1, max_length=26,
                       description="`record_owner` (the triggering record's owner) or a member's user id")


class UpdateField(StrictModel):
    type: Literal["update_field"]
    field: str = Field(min_length=1, max_length=100, description="A writable property; `custom_fields.<key>` too")
    value: Any = None


class AddTag(StrictModel):
    type: Literal["add_tag"]
    tag: str = Field(min_length=1, max_length=64)


class SendWebhook(StrictModel):
    type: Literal["send_webhook"]
    subscription_id: Id


class EnqueueJob(StrictModel):
    type: Literal["enqueue_job"]
    handler: str = Field(pattern=HANDLER_PATTERN, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)


Action = Annotated[CreateTask | UpdateField | AddTag | SendWebhook | EnqueueJob, Field(discriminator="type")]


class AutomationCreate(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    object_type: ObjectType
    trigger: Trigger
    conditions: Conditions | None = None
    actions: list[Action] = Field(min_length=1, max_length=10)


class AutomationUpdate(StrictModel):
    """The object type of a rule is fixed (its conditions and actions are written for it)."""

    name: str = Omittable(min_length=1, max_length=100)
    trigger: Trigger = Omittable()
    conditions: Conditions | None = None
    actions: list[Action] = Omittable(min_length=1, max_length=10)


class AutomationRead(ReadModel):
    id: str
    name: str
    object_type: str
    trigger: dict[str, Any]
    conditions: dict[str, Any] | None
    actions: list[dict[str, Any]]
    status: RuleStatus = Field(description="`paused` by an admin, or by the engine after repeated failures")
    paused_reason: str | None
    consecutive_failures: int
    next_run_at: datetime | None = Field(description="Schedule triggers: the next firing (UTC)")
    last_run_at: datetime | None
    last_run_status: str | None
    created_at: datetime
    updated_at: datetime


class AutomationPage(Page[AutomationRead]):
    pass


class StepRead(BaseModel):
    index: int
    action: str
    status: StepStatus
    result: dict[str, Any] | None = Field(None, description="What the step did, e.g. `{\"task_id\": ...}`")
    error: str | None = None


class RunRead(ReadModel):
    id: str
    rule_id: str
    event_id: str | None
    record_id: str | None
    trigger_type: str
    trigger: dict[str, Any] = Field(description="The event as delivered (or the scheduled firing)")
    status: RunStatus
    steps: list[StepRead]
    error: str | None = Field(description="Why the run failed (the failing step and its error)")
    detail: str | None = Field(description="Why the run was skipped or stopped (a loop)")
    attempt: int
    previous_attempts: list[dict[str, Any]] = Field(description="Earlier attempts of a retried run")
    started_at: datetime
    finished_at: datetime | None


class RunPage(Page[RunRead]):
    pass


class AutomationListQuery(StrictModel):
    status: RuleStatus | None = None
    object_type: ObjectType | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class RunListQuery(StrictModel):
    status: RunStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class DryRunRequest(StrictModel):
    record_id: Id


class DryRunStep(BaseModel):
    index: int
    action: str
    status: StepStatus
    would: dict[str, Any] | None = Field(None, description="What the action would do")
    error: str | None = None


class DryRunResult(BaseModel):
    record_id: str
    matched: bool = Field(description="Whether the record meets the rule's conditions now")
    steps: list[DryRunStep] = Field(description="Rehearsed in a transaction that is rolled back; empty when "
                                                "the conditions do not match")


# ---- job payloads ---------------------------------------------------------------------------------------
class EventJob(BaseModel):
    """An event as consumers get it (`layers.queue.outbox.event_body`); keys added later are kept."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    object_type: str
    record_id: str
    workspace_id: str
    sequence: int | None = None
    occurred_at: str | None = None
    causation: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


class RetryRunJob(BaseModel):
    workspace_id: str
    rule_id: str
    run_id: str


class RunScheduleJob(BaseModel):
    workspace_id: str
    rule_id: str
    due_at: str = Field(description="The firing being run (part of its idempotency keys)")
