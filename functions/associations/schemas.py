"""Association schemas: AssociationCreate / AssociationRead / AssociationPage and the batch inputs."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, Field

from layers.records.service import MAX_BATCH
from shared.objects import plural_object_type
from shared.schemas import Page, RecordId, StrictModel

LINKABLE = ("contacts", "companies", "deals")
LinkableObject = Annotated[Literal["contacts", "companies", "deals"],
                          plural_object_type("contacts", "companies", "deals")]


def normalize_label(value: str) -> str:
    """Trimmed, inner whitespace collapsed; "" means unlabelled. Case is kept (matching ignores it)."""
    return " ".join(value.split())


Label = Annotated[str, Field(max_length=64, description='e.g. "decision maker"; "" is unlabelled'),
                  AfterValidator(normalize_label)]


class AssociationCreate(StrictModel):
    label: Label = ""
    is_primary: bool | None = Field(
        None, strict=True,
        description="true: this is the record's primary link of that type (one per type); false: not any more")


class LabelQuery(StrictModel):
    label: Label | None = Field(None, description="Remove only the link with this label (default: every label)")


class AssociationRead(BaseModel):
    id: str
    to_object: str
    to_id: str
    label: str
    is_primary: bool
    created_at: datetime


class AssociationPage(Page[AssociationRead]):
    pass


class AssociationLink(BaseModel):
    """An association seen from neither side (batch results)."""

    id: str
    from_object: str
    from_id: str
    to_object: str
    to_id: str
    label: str
    is_primary: bool
    created_at: datetime


class BatchCreateInput(StrictModel):
    from_object: LinkableObject
    from_id: RecordId
    to_object: LinkableObject
    to_id: RecordId
    label: Label = ""
    is_primary: bool = Field(False, strict=True)


class BatchArchiveInput(StrictModel):
    from_object: LinkableObject
    from_id: RecordId
    to_object: LinkableObject
    to_id: RecordId
    label: Label | None = Field(None, description="Only this label (default: every label between the two)")


class AssociationBatchCreate(StrictModel):
    inputs: list[BatchCreateInput] = Field(min_length=1, max_length=MAX_BATCH)


class AssociationBatchArchive(StrictModel):
    inputs: list[BatchArchiveInput] = Field(min_length=1, max_length=MAX_BATCH)


class AssociationBatchRequest(StrictModel):
    # Any JSON value per input: a bad input fails on its own, like the records' batches.
    inputs: list[Any] = Field(min_length=1, max_length=MAX_BATCH)
    unvalidated_fields: ClassVar[frozenset[str]] = frozenset({"inputs"})  # each input by its own schema


class AssociationBatchResult(BaseModel):
    index: int
    status: int
    outcome: str = Field(description="created | existing | removed | error")
    association: AssociationLink | None = None
    removed: int | None = Field(None, description="How many links were removed (archive)")
    problem: dict[str, Any] | None = None


class AssociationBatchResponse(BaseModel):
    results: list[AssociationBatchResult]
