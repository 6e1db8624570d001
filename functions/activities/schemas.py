"""Activity schemas: ActivityCreate / ActivityUpdate / ActivityRead, timeline entries, list queries.

One flat shape for every kind; which fields a kind takes is checked by functions/activities/rules.py.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, computed_field

from layers.records.routes import HistoryEntry
from shared.clock import as_utc
from shared.normalize import normalize_email
from shared.schemas import Omittable, Page, ReadModel, RecordId, StrictModel

Kind = Literal["note", "task", "call", "meeting", "email"]
Priority = Literal["low", "normal", "high"]
Direction = Literal["inbound", "outbound"]
TaskStatus = Literal["open", "completed", "all"]
MAX_LINKS = 50  # per linked type

# A time must say its offset: a naive time would be a guess about the client's zone.
Instant = Annotated[AwareDatetime, AfterValidator(as_utc)]
Email = Annotated[str, Field(max_length=320), AfterValidator(normalize_email)]
LinkIds = Annotated[list[RecordId], Field(max_length=MAX_LINKS)]
Text = Annotated[str, Field(max_length=60_000)]


class ActivityLinks(StrictModel):
    """Records the activity is about. On update, each type named replaces that type's links ([] clears)."""

    contacts: LinkIds = Omittable()
    companies: LinkIds = Omittable()
    deals: LinkIds = Omittable()


class ActivityCreate(StrictModel):
    kind: Kind
    subject: str | None = Field(None, min_length=1, max_length=255, description="Required for tasks")
    body: Text | None = Field(None, description="Required for notes")
    owner_id: RecordId | None = Field(None, description=(
        "The author, or a task's assignee. Default: the caller when a person; a task created with an API key "
        "must name it"))
    links: ActivityLinks | None = None
    due_at: Instant | None = Field(None, description="Tasks: when it is due (its place on a timeline)")
    priority: Priority | None = Field(None, description="Tasks (default normal)")
    completed_at: Instant | None = Field(None, description="Tasks: set to log a task already done")
    starts_at: Instant | None = Field(None, description="Calls and meetings (default: now)")
    duration_minutes: int | None = Field(None, ge=0, le=10_080, strict=True, description="Calls and meetings")
    outcome: str | None = Field(None, min_length=1, max_length=64, description="Calls and meetings")
    direction: Direction | None = Field(None, description="Emails (required)")
    email_from: Email | None = Field(None, description="Emails")
    email_to: list[Email] | None = Field(None, max_length=100, description="Emails")
    sent_at: Instant | None = Field(None, description="Emails: when it was sent (default: now)")


class ActivityUpdate(StrictModel):
    """The kind of an activity is fixed; fields of another kind are refused."""

    subject: str | None = Field(None, min_length=1, max_length=255)
    body: Text | None = None
    owner_id: RecordId | None = None
    links: ActivityLinks = Omittable()
    due_at: Instant | None = None
    priority: Priority | None = None
    completed_at: Instant | None = Field(None, description="Tasks: set to complete, null to reopen")
    starts_at: Instant | None = None
    duration_minutes: int | None = Field(None, ge=0, le=10_080, strict=True)
    outcome: str | None = Field(None, min_length=1, max_length=64)
    direction: Direction | None = None
    email_from: Email | None = None
    email_to: list[Email] | None = Field(None, max_length=100)
    sent_at: Instant | None = None


class ActivityLinksRead(BaseModel):
    contacts: list[str] = Field(default_factory=list)
    companies: list[str] = Field(default_factory=list)
    deals: list[str] = Field(default_factory=list)


class ActivityRead(ReadModel):
    id: str
    kind: Kind
    subject: str | None
    body: str | None
    owner_id: str | None
    occurred_at: datetime = Field(description=(
        "Its place on a timeline: a note's creation, a task's due time (else creation), a call's or "
        "meeting's start, an email's sent time"))
    links: ActivityLinksRead = Field(description="Linked records you may see (archived ones are hidden)")
    due_at: datetime | None
    priority: Priority | None
    completed_at: datetime | None
    starts_at: datetime | None
    duration_minutes: int | None
    outcome: str | None
    direction: Direction | None
    email_from: str | None
    email_to: list[str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @computed_field(description="Emails: when it was sent (the same as occurred_at)")  # type: ignore[prop-decorator]
    @property
    def sent_at(self) -> datetime | None:
        return self.occurred_at if self.kind == "email" else None


class TimelineEntry(BaseModel):
    kind: Literal["note", "task", "call", "meeting", "email", "history"]
    id: str = Field(description="The activity's or the history entry's id")
    at: datetime = Field(description="occurred_at of an activity, changed_at of a history entry")
    activity: ActivityRead | None = None
    change: HistoryEntry | None = None


class TimelinePage(Page[TimelineEntry]):
    pass


class TimelineQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    kinds: str | None = None


class TasksQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    status: TaskStatus = "open"
    owner_id: str | None = Field(None, max_length=26)


class OverdueQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    owner_id: str | None = Field(None, max_length=26)
