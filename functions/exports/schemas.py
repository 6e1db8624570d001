"""Export schemas: ExportCreate / ExportRead / ExportPage and the job payload."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from layers.records.search import FilterGroup
from shared.objects import plural_object_type
from shared.schemas import Page, StrictModel

ObjectType = Annotated[Literal["contacts", "companies", "deals"], plural_object_type("contacts", "companies", "deals")]
Format = Literal["csv", "jsonl"]
Status = Literal["queued", "running", "completed", "failed"]


class ExportCreate(StrictModel):
    object_type: ObjectType
    format: Format = "csv"
    filter_groups: list[FilterGroup] = Field(default_factory=list, max_length=5,
                                             description="The search's filter language: OR of AND-groups")
    query: str | None = Field(None, max_length=200, description="Full text over the object's text fields")
    properties: list[str] | None = Field(None, min_length=1, max_length=200, description=(
        "Columns, in order (`custom_fields.<key>` for custom fields); default: every property"))


class ExportRead(BaseModel):
    id: str
    object_type: ObjectType
    format: Format
    status: Status
    filter_groups: list[FilterGroup]
    query: str | None
    properties: list[str] | None
    row_count: int
    error: str | None
    download_url: str | None = Field(None, description="Presigned GET of the file once completed (expires)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ExportPage(Page[ExportRead]):
    pass


class ListQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class ExportRunJob(BaseModel):
    workspace_id: str = Field(min_length=1, max_length=26)
    export_id: str = Field(min_length=1, max_length=26)
