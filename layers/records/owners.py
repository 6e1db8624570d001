"""The "owned by me" / "owned by my team" filters of lists and searches.

Teams belong to functions/workspaces, which this layer may not import: the workspaces capability
provides the caller's teammates through `use_teammates_provider`, the way custom field definitions
come from functions/fields.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy import ColumnElement

from layers.db.base import OwnedMixin
from layers.db.uow import UnitOfWork
from shared.errors import ValidationFailed

OwnedBy = Literal["me", "my_team"]
TeammatesProvider = Callable[[UnitOfWork, str], set[str]]  # (uow, user id) → everyone sharing a team with them

_provider: TeammatesProvider | None = None


def use_teammates_provider(provider: TeammatesProvider | None) -> None:
    global _provider
    _provider = provider


def owner_condition(uow: UnitOfWork, model: type[Any], owned_by: OwnedBy, *, field: str) -> ColumnElement[bool]:
    """`owner_id` is the caller (`me`), or the caller or one of their teammates (`my_team`)."""
    scope = uow.scope
    assert scope is not None
    if not issubclass(model, OwnedMixin):
        raise _invalid(field, "these records have no owner")
    if scope.actor.type != "user":
        raise _invalid(field, "only people have records of their own; API keys cannot filter by owner")
    if owned_by == "me":
        return model.owner_id == scope.actor.id  # type: ignore[no-any-return]
    if scope.visible_owner_ids is not None:  # a restricted member: already the caller and teammates
        owners = set(scope.visible_owner_ids)
    else:
        if _provider is None:
            raise RuntimeError("no teammates provider: the workspaces capability registers one")
        owners = {scope.actor.id, *_provider(uow, scope.actor.id)}
    return model.owner_id.in_(sorted(owners))  # type: ignore[no-any-return]


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"owned_by: {message}", errors=[{"field": field, "message": message, "code": "owned_by"}])
