"""Workspace isolation enforced by the session, not by handlers.

Every ORM SELECT/UPDATE/DELETE in a scoped session gets `workspace_id = :scope` on every
tenant entity it touches (SQLAlchemy loader criteria), and every new tenant row is stamped
with the scope's workspace. A session with neither a scope nor an explicit `unscoped` mark
refuses to touch tenant tables at all.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from layers.db.base import OwnedMixin, TenantMixin

WORKSPACE_KEY = "workspace_id"
VISIBLE_OWNERS_KEY = "visible_owner_ids"
UNSCOPED_KEY = "unscoped"


class TenancyViolation(RuntimeError):
    """Code tried to touch tenant rows without a workspace scope — a bug, never a client error."""


@event.listens_for(Session, "do_orm_execute")
def _add_workspace_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the parent load already carried the criteria
    workspace_id = state.session.info.get(WORKSPACE_KEY)
    if workspace_id is None:
        if state.session.info.get(UNSCOPED_KEY):
            return
        if _touches_tenant_tables(state):
            raise TenancyViolation("tenant table queried outside a workspace scope")
        return
    options = [
        with_loader_criteria(
            TenantMixin,
            lambda cls: cls.workspace_id == workspace_id,
            include_aliases=True,
            track_closure_variables=True,
        )
    ]
    visible = state.session.info.get(VISIBLE_OWNERS_KEY)
    if visible is not None:  # record-level visibility: only records the caller or their team own
        owners = sorted(visible)
        options.append(
            with_loader_criteria(
                OwnedMixin,
                lambda cls: cls.owner_id.in_(owners),
                include_aliases=True,
                track_closure_variables=True,
            )
        )
    state.statement = state.statement.options(*options)


@event.listens_for(Session, "before_flush")
def _stamp_workspace(session: Session, _ctx: Any, _instances: Any) -> None:
    workspace_id = session.info.get(WORKSPACE_KEY)
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantMixin):
            continue
        if workspace_id is None:
            if not session.info.get(UNSCOPED_KEY):
                raise TenancyViolation("tenant row written outside a workspace scope")
            if obj.workspace_id is None:
                raise TenancyViolation("unscoped write of a tenant row must name its workspace")
            continue
        if obj.workspace_id is None:
            obj.workspace_id = workspace_id
        elif obj.workspace_id != workspace_id:
            raise TenancyViolation("row belongs to another workspace")


def _touches_tenant_tables(state: ORMExecuteState) -> bool:
    for mapper in state.all_mappers:
        if issubclass(mapper.class_, TenantMixin):
            return True
    return False
