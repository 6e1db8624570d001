"""Company schemas: CompanyCreate / CompanyUpdate / CompanyRead."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from shared.normalize import normalize_domain, normalize_tags
from shared.schemas import Omittable, ReadModel, RecordId, StrictModel

Domain = Annotated[str, Field(max_length=2048, description="Normalised: no scheme, www., port or path"),
                   AfterValidator(normalize_domain)]
Tags = Annotated[list[str], Field(max_length=50), AfterValidator(normalize_tags)]


class CompanyCreate(StrictModel):
    name: str = Field(min_length=1, max_length=255)
    domain: Domain | None = None
    industry: str | None = Field(None, max_length=100)
    employee_count: int | None = Field(None, ge=0, le=10_000_000, strict=True)
    owner_id: RecordId | None = None
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict, description="Values of the workspace's custom fields")


class CompanyUpdate(StrictModel):
    name: str = Omittable(min_length=1, max_length=255)
    domain: Domain | None = None
    industry: str | None = Field(None, max_length=100)
    employee_count: int | None = Field(None, ge=0, le=10_000_000, strict=True)
    owner_id: RecordId | None = None
    tags: Tags = Omittable(description="The full new list ([] clears it)")
    custom_fields: dict[str, Any] = Omittable(description="Custom field values to set (null removes one)")


class CompanyRead(ReadModel):
    id: str
    name: str
    domain: str | None
    industry: str | None
    employee_count: int | None
    owner_id: str | None
    tags: list[str]
    custom_fields: dict[str, Any] = Field(validation_alias="custom")
    merged_into_id: str | None = Field(None, description="Set on a record merged into another")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
