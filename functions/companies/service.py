"""Company use cases: the shared record machinery, plus what other capabilities may ask of companies."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from functions.associations import service as associations
from functions.companies.models import Company
from functions.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate
from functions.workspaces.service import ensure_members
from layers.db.uow import UnitOfWork
from layers.records.properties import PropertySpec
from layers.records.service import ObjectSpec, RecordService
from shared.errors import ValidationFailed


def check_company_and_owner(uow: UnitOfWork, values: dict[str, Any]) -> None:
    """For any record naming a company and an owner (contacts, deals, companies themselves): 422 unless
    the company is live in this workspace and the owner is a member."""
    if values.get("company_id") is not None:
        ensure_active(uow, values["company_id"], field="company_id")
    if values.get("owner_id") is not None:
        ensure_members(uow, [values["owner_id"]], field="owner_id")


SPEC = ObjectSpec(
    object_type="companies",
    event_name="company",
    model=Company,
    read_schema=CompanyRead,
    create_schema=CompanyCreate,
    update_schema=CompanyUpdate,
    properties=(
        PropertySpec("id", "id"),
        PropertySpec("name", "string"),
        PropertySpec("domain", "string"),
        PropertySpec("industry", "string"),
        PropertySpec("employee_count", "number"),
        PropertySpec("owner_id", "id"),
        PropertySpec("tags", "tags", sortable=False),
        PropertySpec("created_at", "datetime"),
        PropertySpec("updated_at", "datetime"),
        PropertySpec("archived_at", "datetime"),
    ),
    text_fields=("name", "domain", "industry"),
    unique_field="domain",
    unique_key="domain_key",
    check_references=check_company_and_owner,
    custom_fields=True,
)
companies = RecordService(SPEC)
associations.register_object_type("companies", companies)


def ensure_active(uow: UnitOfWork, company_id: str, *, field: str) -> None:
    """For other capabilities: 422 unless `company_id` is a live company of the caller's workspace."""
    found = uow.session.scalar(
        select(Company.id).where(Company.id == company_id, Company.archived_at.is_(None))
    )
    if found is None:
        raise ValidationFailed(f"{field} does not name a company in this workspace", errors=[
            {"field": field, "message": "no such company", "code": "reference"}])


def exists(uow: UnitOfWork, company_id: str, *, include_archived: bool = False) -> bool:
    company = uow.session.get(Company, company_id)
    return company is not None and (include_archived or company.archived_at is None)


def purge_archived(uow: UnitOfWork, *, archived_before: datetime, limit: int) -> int:
    """Hard-delete up to `limit` companies archived before the cutoff (see RecordService.purge_archived)."""
    return companies.purge_archived(uow, archived_before=archived_before, limit=limit, forget=_forget_purged)


def _forget_purged(uow: UnitOfWork, ids: list[str]) -> None:
    associations.forget_records(uow, record_type="companies", record_ids=ids)
