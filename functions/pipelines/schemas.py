"""Pipeline and stage schemas: PipelineCreate / PipelineUpdate / PipelineRead, and the stage requests."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema, model_validator

from functions.pipelines.rules import MAX_STAGES, parse_probability
from shared.schemas import Page, ReadModel, RecordId, StrictModel

StageKind = Literal["open", "won", "lost"]
STAGE_KINDS: tuple[str, ...] = ("open", "won", "lost")
# An exact decimal 0..1 with at most 4 places, sent and answered as a string ("0.25"); never a float.
Probability = Annotated[
    Decimal,
    BeforeValidator(parse_probability),
    PlainSerializer(lambda value: format(value.normalize(), "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(0(\.\d{1,4})?|1(\.0{1,4})?)$", "examples": ["0.25"],
                    "description": "Win probability 0..1 as a decimal string, at most 4 places"}),
]
StageName = Annotated[str, Field(min_length=1, max_length=100)]
Id = RecordId


class StageCreate(StrictModel):
    name: StageName
    probability: Probability
    kind: StageKind = "open"


class StageAdd(StageCreate):
    position: int | None = Field(None, ge=0, le=MAX_STAGES,
                                 description="0-based place among the stages; the end when absent")


class StageUpdate(StrictModel):
    name: StageName | None = None
    probability: Probability | None = None
    kind: StageKind | None = Field(None, description="Only while no deal is in the stage")

    @model_validator(mode="after")
    def _not_null(self) -> StageUpdate:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self


class StageReorder(StrictModel):
    stage_ids: list[Id] = Field(min_length=1, max_length=MAX_STAGES,
                                description="Every stage of the pipeline, each once, in the new order")


class PipelineCreate(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    stages: list[StageCreate] = Field(min_length=1, max_length=MAX_STAGES, description="In order; one open at least")
    is_default: bool = Field(False, description="Make it the workspace's default pipeline for new deals")


class PipelineUpdate(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    is_default: Literal[True] | None = Field(
        None, description="true makes this the default pipeline (the previous default stops being it)")

    @model_validator(mode="before")
    @classmethod
    def _no_null_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" in data and data["name"] is None:
            raise ValueError("name cannot be null")
        return data


class StageRead(ReadModel):
    id: str
    name: str
    position: int
    probability: Probability
    kind: StageKind


class PipelineRead(ReadModel):
    id: str
    name: str
    is_default: bool
    stages: list[StageRead] = Field(description="The live stages, in order")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class PipelinePage(Page[PipelineRead]):
    pass
