"""Contact use cases: the shared record machinery, references checked through the owning capabilities."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from functions.associations import service as associations
from functions.companies import service as companies_service
from functions.contacts.models import Contact
from functions.contacts.schemas import LIFECYCLE_STAGES, ContactCreate, ContactRead, ContactUpdate
from layers.db.uow import UnitOfWork
from layers.records.properties import PropertySpec
from layers.records.service import ObjectSpec, RecordService, RecordView
from shared.clock import utcnow
from shared.context import Scope
from shared.errors import NotFound

SPEC = ObjectSpec(
    object_type="contacts",
    event_name="contact",
    model=Contact,
    read_schema=ContactRead,
    create_schema=ContactCreate,
    update_schema=ContactUpdate,
    properties=(
        PropertySpec("id", "id"),
        PropertySpec("first_name", "string"),
        PropertySpec("last_name", "string"),
        PropertySpec("email", "string"),
        PropertySpec("phone", "string"),
        PropertySpec("job_title", "string"),
        PropertySpec("lifecycle_stage", "enum", choices=LIFECYCLE_STAGES),
        PropertySpec("owner_id", "id"),
        PropertySpec("company_id", "id"),
        PropertySpec("tags", "tags", sortable=False),
        PropertySpec("ai_score", "number"),
        PropertySpec("ai_scored_at", "datetime"),
        PropertySpec("created_at", "datetime"),
        PropertySpec("updated_at", "datetime"),
        PropertySpec("archived_at", "datetime"),
    ),
    text_fields=("first_name", "last_name", "email", "job_title"),
    unique_field="email",
    unique_key="email_key",
    check_references=companies_service.check_company_and_owner,
    custom_fields=True,
)
contacts = RecordService(SPEC)
associations.register_object_type("contacts", contacts)


def list_for_company(
    scope: Scope, company_id: str, *, limit: int, cursor: str | None, include_archived: bool
) -> str:
    with UnitOfWork(scope) as uow:
        if not companies_service.exists(uow, company_id, include_archived=include_archived):
            raise NotFound(f"no company with id {company_id}")
    return contacts.list(scope, limit=limit, cursor=cursor, include_archived=include_archived,
                         where=(Contact.company_id == company_id,))


def reassign_company(uow: UnitOfWork, from_id: str, to_id: str, *, only: list[str] | None = None) -> list[str]:
    """A company merge (or its undo): contacts of `from_id` (archived ones too; `only` these) move to `to_id`,
    each with its history row, event and cache refresh. Returns the ids that moved."""
    statement = select(Contact).where(Contact.company_id == from_id).order_by(Contact.id)
    if only is not None:
        statement = statement.where(Contact.id.in_(only or [""]))
    rows = list(uow.session.scalars(statement))
    for row in rows:
        contacts._change(uow, row, {"company_id": to_id}, action="updated", event="updated")
    return [row.id for row in rows]


def purge_archived(uow: UnitOfWork, *, archived_before: datetime, limit: int) -> int:
    """Hard-delete up to `limit` contacts archived before the cutoff (see RecordService.purge_archived)."""
    return contacts.purge_archived(uow, archived_before=archived_before, limit=limit, forget=_forget_purged)


def _forget_purged(uow: UnitOfWork, ids: list[str]) -> None:
    associations.forget_records(uow, record_type="contacts", record_ids=ids)


def set_ai_score(scope: Scope, contact_id: str, *, score: int) -> RecordView:
    """The AI lead score (a read-only field): written with history and an event like any change, in the
    caller's scope (its `source` says "ai"). `ai_scored_at` is the change's own time, so the nightly
    rescoring sees the contact as unchanged since."""
    with UnitOfWork(scope) as uow:
        row = contacts._load(uow, contact_id, include_archived=False)
        contacts._change(uow, row, {"ai_score": score, "ai_scored_at": utcnow()}, action="updated", event="updated")
        uow.session.execute(update(Contact).where(Contact.id == row.id).values(ai_scored_at=row.updated_at)
                            .execution_options(synchronize_session=False))
        view = contacts._view(row)
        uow.commit()
    return view


def contacts_to_score(*, limit: int) -> list[tuple[str, str]]:
    """Across workspaces: (workspace id, contact id) of live contacts never scored or changed since their score."""
    with UnitOfWork(unscoped=True) as uow:
        return [(w, i) for w, i in uow.session.execute(
            select(Contact.workspace_id, Contact.id)
            .where(Contact.archived_at.is_(None), Contact.merged_into_id.is_(None),
                   or_(Contact.ai_scored_at.is_(None), Contact.updated_at > Contact.ai_scored_at))
            .order_by(Contact.id).limit(limit))]
