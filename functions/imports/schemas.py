"""Import schemas: ImportCreate / ImportRead / ImportPage, the mapping and preview, the job payload."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from shared.objects import plural_object_type
from shared.schemas import Page, StrictModel

ObjectType = Annotated[Literal["contacts", "companies", "deals"], plural_object_type("contacts", "companies", "deals")]
Status = Literal["awaiting_upload", "uploaded", "previewed", "queued", "running", "completed", "failed", "cancelled"]
Mapping = dict[str, str | None]


class ImportCreate(StrictModel):
    """JSON form: name an object already uploaded to the workspace's prefix (`source_key`), or nothing, to get
    a presigned `upload_url`. Or send multipart/form-data with a `file` part and an `object_type` field."""

    object_type: ObjectType
    source_key: str | None = Field(None, max_length=1024, description="An object key in the workspace's prefix")
    file_name: str | None = Field(None, max_length=255)


class ImportUpload(ImportCreate):
    """multipart/form-data: the CSV as the `file` part, the other fields as form fields."""

    file: bytes = Field(description="The CSV file (UTF-8, a header row first)")


class ImportOptions(StrictModel):
    update_existing: bool = Field(True, description=(
        "Contacts and companies: update the record with the same email/domain (false: such rows are rejected)"))


class ImportCommit(StrictModel):
    mapping: Mapping = Field(description="CSV column → property (`custom_fields.<key>` for custom fields), "
                                         "or null to skip the column")
    options: ImportOptions = Field(default_factory=ImportOptions)


class PreviewRequest(StrictModel):
    mapping: Mapping | None = Field(None, description="Default: the suggested mapping")


class PreviewQuery(StrictModel):
    mapping: str | None = Field(None, description="The mapping as JSON (default: the suggested mapping)")


class ListQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class ImportCounts(BaseModel):
    rows_total: int = Field(description="Rows read so far")
    created: int
    updated: int
    rejected: int


class ImportRead(BaseModel):
    id: str
    object_type: ObjectType
    status: Status
    file_name: str | None
    source_key: str
    header: list[str] | None
    mapping: Mapping | None
    options: dict[str, Any]
    counts: ImportCounts
    progress: float = Field(description="0 to 1: the share of the file read")
    error: str | None
    rejects_url: str | None = Field(None, description="Presigned GET of the rejected rows (CSV), once finished")
    upload_url: str | None = Field(None, description="Presigned PUT for the file, while it is awaited")
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class ImportPage(Page[ImportRead]):
    pass


class PreviewRow(BaseModel):
    row_number: int = Field(description="1 = the first row after the header")
    values: dict[str, Any] = Field(description="The row as the input it becomes")
    errors: list[dict[str, Any]] = Field(description="What the API would refuse in it (field, message, code)")


class ImportPreview(BaseModel):
    import_: ImportRead = Field(alias="import", serialization_alias="import")
    header: list[str]
    delimiter: str
    properties: list[str] = Field(description="What a column may be mapped to")
    suggested_mapping: Mapping
    mapping: Mapping
    rows: list[PreviewRow]


class ImportRunJob(BaseModel):
    workspace_id: str = Field(min_length=1, max_length=26)
    import_id: str = Field(min_length=1, max_length=26)
    position: int = Field(0, ge=0, description="rows_processed this message continues from")
