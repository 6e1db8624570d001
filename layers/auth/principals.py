"""Who a credential is: the port the auth middleware asks, implemented by the workspaces capability."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from layers.auth.firebase import FirebaseIdentity
from shared.context import Scope

API_KEY_PREFIX = "crm_"


@dataclass(frozen=True)
class UserPrincipal:
    user_id: str
    email: str | None
    via: Literal["firebase", "session"]


class CredentialResolver(Protocol):
    def resolve_api_key(self, raw_key: str) -> Scope | None:
        """The scope of a live API key, or None if unknown or revoked."""

    def resolve_user(self, identity: FirebaseIdentity) -> UserPrincipal:
        """The person behind a verified Firebase identity (created on first sight)."""

    def membership_scope(self, user: UserPrincipal, workspace_id: str | None) -> Scope | None:
        """The person's scope in a workspace (the only one if None and they have one), or None."""
