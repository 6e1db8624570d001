"""Field definition schemas: FieldCreate / FieldUpdate / FieldRead / FieldPage."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool

from functions.fields.rules import MAX_OPTIONS, normalize_options
from layers.records.custom import KEY_PATTERN, FieldType
from shared.objects import plural_object_type
from shared.schemas import Omittable, Page, ReadModel, StrictModel

ObjectType = Annotated[Literal["contacts", "companies", "deals"], plural_object_type("contacts", "companies", "deals")]
Key = Annotated[str, Field(pattern=KEY_PATTERN.pattern, description="Lower-case letters, digits and _; starts with "
                                                                    "a letter; at most 63 characters")]
Options = Annotated[list[str], Field(max_length=MAX_OPTIONS, description="Choices of a select field (distinct, "
                                                                          "ignoring case)"),
                    AfterValidator(normalize_options)]
Label = Annotated[str, Field(min_length=1, max_length=100)]


class FieldCreate(StrictModel):
    object_type: ObjectType
    key: Key
    label: Label
    type: FieldType
    required: StrictBool = False
    unique: StrictBool = Field(False, description="Only for text, email, url, number and single_select fields")
    options: Options = Field(default_factory=list)
    description: str | None = Field(None, max_length=500)


class FieldUpdate(StrictModel):
    """object_type, key and type are accepted only unchanged (so a client may send back what it read)."""

    object_type: ObjectType = Omittable()
    key: Key = Omittable()
    type: FieldType = Omittable()
    label: Label = Omittable()
    required: StrictBool = Omittable()
    unique: StrictBool = Omittable()
    options: Options = Omittable(description="The full new list: adding and reordering are always "
                                                      "fine; removing an option some record uses answers 409")
    description: str | None = Field(None, max_length=500)


class FieldRead(ReadModel):
    id: str
    object_type: str
    key: str
    label: str
    type: str
    required: bool
    unique: bool = Field(validation_alias="unique_values")
    options: list[str]
    description: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = Field(description="Set on an archived field: its values stay stored and "
                                                     "returned, but cannot be written")


class FieldPage(Page[FieldRead]):
    pass


class FieldListQuery(StrictModel):
    object: ObjectType | None = None
    include_archived: bool = False
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class FieldGetQuery(StrictModel):
    include_archived: bool = False
