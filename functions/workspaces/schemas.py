"""Workspace, member, API key and session schemas."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StrictBool, StrictInt, field_validator, model_validator

from shared.schemas import Page, ReadModel, RecordId, StrictModel

Role = Literal["owner", "admin", "member", "viewer"]
ApiScope = Literal["read", "write", "admin"]


class WorkspaceCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200)


class WorkspaceRead(ReadModel):
    id: str
    name: str
    created_at: datetime
    role: Role | None = Field(None, description="The caller's role in it")


class WorkspaceList(ReadModel):
    data: list[WorkspaceRead]


class MemberInvite(StrictModel):
    email: EmailStr
    role: Role = "member"

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class MemberUpdate(StrictModel):
    role: Role


class MemberRead(ReadModel):
    user_id: str
    email: str
    role: Role
    joined_at: datetime


class MemberPage(Page[MemberRead]):
    pass


class ApiKeyCreate(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[ApiScope] = Field(min_length=1)


class ApiKeyRead(ReadModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    scopes: list[ApiScope]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret. Shown once: store it now")


class ApiKeyPage(Page[ApiKeyRead]):
    pass


class SessionCreate(StrictModel):
    id_token: str = Field(min_length=1, max_length=8192)


class MeRead(ReadModel):
    id: str
    email: str
    workspaces: list[WorkspaceRead]


class WorkspaceProvisioned(ReadModel):
    workspace_id: str
    owner_user_id: str
    api_key_id: str
    api_key: str


class WorkspaceSettingsRead(ReadModel):
    id: str
    name: str
    created_at: datetime
    restrict_member_visibility: bool = Field(
        description="When true, members (role `member`) see only records they or their teammates own")
    stale_deal_days: int = Field(
        description="Open deals without activity for this many days are flagged with a `deal.stale` event; "
                    "0 turns it off")
    role: Role | None = Field(None, description="The caller's role (null for API keys)")


class WorkspaceUpdate(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    restrict_member_visibility: StrictBool | None = None
    stale_deal_days: StrictInt | None = Field(None, ge=0, le=3650)

    @model_validator(mode="after")
    def _no_nulls(self) -> WorkspaceUpdate:
        nulls = sorted(k for k in self.model_fields_set if getattr(self, k) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self


# ---- teams --------------------------------------------------------------------------------------------
TeamName = Annotated[str, Field(min_length=1, max_length=100)]
UserId = RecordId


class TeamCreate(StrictModel):
    name: TeamName
    member_ids: list[UserId] = Field(default_factory=list, max_length=500,
                                     description="Workspace members to put in the team at once")


class TeamUpdate(StrictModel):
    name: TeamName


class TeamRead(ReadModel):
    id: str
    name: str
    member_ids: list[str] = Field(description="User ids of the team's members")
    created_at: datetime
    updated_at: datetime


class TeamPage(Page[TeamRead]):
    pass


class TeamMemberAdd(StrictModel):
    user_id: UserId


class TeamMemberRead(ReadModel):
    team_id: str
    user_id: str
    added_at: datetime
