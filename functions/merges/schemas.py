"""Merge schemas: MergeCreate / MergeRead / MergePage, duplicate pairs and the list queries."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from shared.objects import plural_object_type
from shared.schemas import Actor, Page, RecordId, StrictModel

MergeableObject = Annotated[Literal["contacts", "companies"], plural_object_type("contacts", "companies")]
Choice = Literal["keep", "merge"]


class MergeCreate(StrictModel):
    keep_id: RecordId = Field(description="The record that survives")
    merge_id: RecordId = Field(description="The record merged into it (archived after)")
    fields: dict[str, Choice] = Field(
        default_factory=dict,
        description='Per field, whose value the survivor gets: "keep" or "merge". Custom fields as '
                    '"custom_fields.<key>". Unnamed fields keep the kept value, or take the merged one when the kept '
                    "one is empty.")

    @model_validator(mode="after")
    def _two_records(self) -> MergeCreate:
        if self.keep_id == self.merge_id:
            raise ValueError("keep_id and merge_id must name two different records")
        return self


class DuplicatesQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    min_score: float = Field(0.0, ge=0, le=1)


class MergesQuery(StrictModel):
    object: MergeableObject | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class DuplicatePair(BaseModel):
    record_ids: list[str] = Field(description="The two records, lower id first")
    score: float = Field(ge=0, le=1, description="How likely they are the same (0..1)")
    reasons: list[str] = Field(description="same_email, similar_email, same_name_and_company, "
                                           "same_local_part_at_company, same_phone, same_full_name (contacts); "
                                           "same_domain, same_domain_root, same_name (companies)")
    records: list[dict[str, Any]] = Field(description="Both records, as the record routes answer them")


class DuplicatePage(Page[DuplicatePair]):
    pass


class MergeRead(BaseModel):
    id: str
    object: str
    survivor_id: str
    merged_id: str
    fields: dict[str, Any] = Field(description="The survivor's fields the merge changed: {field: {old, new}}")
    moved: dict[str, int] = Field(description="How many links and references moved to the survivor")
    actor: Actor
    created_at: datetime
    undo_until: datetime = Field(description="Undo is possible until then (30 days)")
    undone_at: datetime | None


class MergePage(Page[MergeRead]):
    pass


class MergeResult(BaseModel):
    merge: MergeRead
    record: dict[str, Any] = Field(description="The survivor after the merge")
