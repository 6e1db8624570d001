"""Who is acting, in which workspace, for which request: passed explicitly to services."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ActorType = Literal["user", "api_key", "system"]
Role = Literal["owner", "admin", "member", "viewer"]

ROLE_RANK: dict[str, int] = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str
    email: str | None = None


@dataclass(frozen=True)
class Scope:
    """The caller's workspace and permissions; every service call takes one."""

    workspace_id: str
    actor: Actor
    role: Role = "viewer"
    scopes: frozenset[str] = field(default_factory=frozenset)
    request_id: str = ""
    source: str = "api"
    # Record-level visibility: None sees every record of the workspace; otherwise only records
    # whose owner is one of these users (the caller and their teammates).
    visible_owner_ids: frozenset[str] | None = None
    # Automation rules whose actions led to this change, oldest first: a rule met again in its own
    # chain is a loop and stops (functions/automations).
    causation: tuple[str, ...] = ()

    @property
    def can_write(self) -> bool:
        if self.actor.type == "api_key":
            return bool({"write", "admin"} & self.scopes)
        return ROLE_RANK[self.role] >= ROLE_RANK["member"]

    @property
    def can_admin(self) -> bool:
        if self.actor.type == "api_key":
            return "admin" in self.scopes
        return ROLE_RANK[self.role] >= ROLE_RANK["admin"]


def system_scope(
    workspace_id: str, *, source: str = "system", request_id: str = "", causation: tuple[str, ...] = ()
) -> Scope:
    return Scope(
        causation=causation,
        workspace_id=workspace_id,
        actor=Actor(type="system", id="system"),
        role="owner",
        scopes=frozenset({"read", "write", "admin"}),
        request_id=request_id,
        source=source,
    )
