"""Contact schemas: ContactCreate / ContactUpdate / ContactRead."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from shared.normalize import normalize_email, normalize_phone, normalize_tags
from shared.schemas import Omittable, ReadModel, RecordId, StrictModel

LIFECYCLE_STAGES = ("subscriber", "lead", "qualified", "opportunity", "customer", "other")
LifecycleStage = Literal["subscriber", "lead", "qualified", "opportunity", "customer", "other"]
Email = Annotated[str, Field(max_length=320, description="Trimmed and lower-cased"), AfterValidator(normalize_email)]
Phone = Annotated[str, Field(max_length=64), AfterValidator(normalize_phone)]
Tags = Annotated[list[str], Field(max_length=50), AfterValidator(normalize_tags)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class ContactCreate(StrictModel):
    first_name: Name | None = None
    last_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    job_title: str | None = Field(None, max_length=150)
    lifecycle_stage: LifecycleStage | None = None
    owner_id: RecordId | None = None
    company_id: RecordId | None = None
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict, description="Values of the workspace's custom fields")

    @model_validator(mode="after")
    def _identifiable(self) -> ContactCreate:
        if not (self.email or self.first_name or self.last_name):
            raise ValueError("a contact needs at least an email, a first name or a last name")
        return self


class ContactUpdate(StrictModel):
    first_name: Name | None = None
    last_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    job_title: str | None = Field(None, max_length=150)
    lifecycle_stage: LifecycleStage | None = None
    owner_id: RecordId | None = None
    company_id: RecordId | None = None
    tags: Tags = Omittable(description="The full new list ([] clears it)")
    custom_fields: dict[str, Any] = Omittable(description="Custom field values to set (null removes one)")


class ContactRead(ReadModel):
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    job_title: str | None
    lifecycle_stage: LifecycleStage | None
    owner_id: str | None
    company_id: str | None
    tags: list[str]
    custom_fields: dict[str, Any] = Field(validation_alias="custom")
    merged_into_id: str | None = Field(None, description="Set on a record merged into another")
    ai_score: int | None = Field(None, description="Lead score 0-100 (read-only, from the AI capability's runs)")
    ai_scored_at: datetime | None = Field(None, description="When ai_score was computed")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
