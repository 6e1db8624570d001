"""Deal schemas: DealCreate / DealUpdate / DealRead, the stage move, stage changes and the board."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, WithJsonSchema, field_serializer

from functions.deals.rules import format_amount, parse_amount, parse_currency
from functions.pipelines.schemas import Probability, StageKind
from layers.records.routes import page_model_for
from shared.normalize import normalize_tags
from shared.schemas import Omittable, Page, ReadModel, RecordId, StrictModel

Amount = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,14}(\.\d{1,4})?$", "examples": ["1250.50"],
                    "description": "Exact decimal string (an integer is accepted; floats are not); no more "
                                   "decimal places than the currency's minor unit"}),
]
Currency = Annotated[
    str,
    BeforeValidator(parse_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{3}$", "examples": ["EUR"],
                    "description": "ISO 4217 code (upper-cased); required when amount is set"}),
]
Tags = Annotated[list[str], Field(max_length=50), AfterValidator(normalize_tags)]
Id = RecordId
# In id order, each once: the order reads answer, so writing the same contacts again is no change.
ContactIds = Annotated[list[Id], Field(max_length=100, description="The deal's contacts (replaces the list)"),
                       AfterValidator(lambda ids: sorted(set(ids)))]
LostReason = Annotated[str, Field(min_length=1, max_length=255)]


class DealCreate(StrictModel):
    name: str = Field(min_length=1, max_length=255)
    amount: Amount | None = None
    currency: Currency | None = None
    pipeline_id: Id | None = Field(None, description="Defaults to the stage's pipeline, else the workspace's default")
    stage_id: Id | None = Field(None, description="Defaults to the pipeline's first open stage")
    expected_close_date: date | None = None
    owner_id: Id | None = None
    company_id: Id | None = None
    contact_ids: ContactIds = Field(default_factory=list)
    primary_contact_id: Id | None = Field(None, description="One of the deal's contacts (added when missing)")
    lost_reason: LostReason | None = Field(None, description="Required when the stage is of kind lost")
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict, description="Values of the workspace's custom fields")


class DealUpdate(StrictModel):
    name: str = Omittable(min_length=1, max_length=255)
    amount: Amount | None = None
    currency: Currency | None = None
    pipeline_id: Id = Omittable(description="A pipeline change needs a stage_id of the new pipeline")
    stage_id: Id = Omittable()
    expected_close_date: date | None = None
    owner_id: Id | None = None
    company_id: Id | None = None
    contact_ids: ContactIds = Omittable()
    primary_contact_id: Id | None = Field(None, description="null clears the primary contact")
    lost_reason: LostReason | None = Field(None, description="Only for a deal in (or moving to) a lost stage")
    tags: Tags = Omittable(description="The full new list ([] clears it)")
    custom_fields: dict[str, Any] = Omittable(description="Custom field values to set (null removes one)")


class StageMove(StrictModel):
    stage_id: Id = Field(description="A stage of the deal's pipeline")
    lost_reason: LostReason | None = Field(None, description="Required when the stage is of kind lost")


class DealRead(ReadModel):
    id: str
    name: str
    amount: Decimal | None = Field(description="Exact decimal string in the currency's minor units")
    currency: str | None
    pipeline_id: str
    stage_id: str
    expected_close_date: date | None
    owner_id: str | None
    company_id: str | None
    contact_ids: list[str] = Field(description="Contacts you may see, in id order")
    primary_contact_id: str | None
    tags: list[str]
    custom_fields: dict[str, Any] = Field(validation_alias="custom")
    closed_at: datetime | None = Field(description="Set on entering a won or lost stage")
    lost_reason: str | None
    stage_entered_at: datetime
    last_activity_at: datetime | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @field_serializer("amount", return_type=str | None)
    def _exact_amount(self, amount: Decimal | None) -> str | None:
        return None if amount is None else format_amount(amount, self.currency)


DealPage = page_model_for(DealRead)  # the same class the standard list routes answer


class StageChangeRead(BaseModel):
    id: str
    deal_id: str
    pipeline_id: str
    from_stage_id: str | None = Field(description="null for the stage a deal was created in")
    to_stage_id: str
    actor: dict[str, str]
    changed_at: datetime


class StageChangePage(Page[StageChangeRead]):
    pass


class CurrencyTotal(BaseModel):
    currency: str
    total: str = Field(description="Exact sum in the currency's minor units")


class BoardStage(BaseModel):
    id: str
    name: str
    position: int
    probability: Probability
    kind: StageKind
    count: int = Field(description="Live deals in the stage (that you may see)")
    amounts: list[CurrencyTotal] = Field(description="Sum of the amounts per currency")
    deals: DealPage = Field(  # type: ignore[valid-type]
        description="The first page, newest deal first; page on with "
                    "/v1/pipelines/{pipeline_id}/board/stages/{stage_id}")


class Board(BaseModel):
    pipeline_id: str
    name: str
    stages: list[BoardStage]
