"""People, workspaces, memberships and API keys.

`users` and `workspaces` are the two platform tables without `workspace_id`: a person exists
across workspaces, and a workspace is the tenant itself. Everything else is tenant-scoped.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, RecordMixin, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    firebase_uid: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Members (role `member`) see only records they or their teammates own.
    restrict_member_visibility: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                             server_default=text("0"))
    # Open deals without activity for this many days are flagged `deal.stale`; 0 turns it off.
    stale_deal_days: Mapped[int] = mapped_column(Integer, nullable=False, default=14, server_default=text("14"))


class Membership(TenantMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("workspace_id", "user_id"),
        Index("ix_memberships_user_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(IdColumn(), ForeignKey("workspaces.id"), nullable=False)
    user_id: Mapped[str] = mapped_column(IdColumn(), ForeignKey("users.id"), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ApiKey(TenantMixin, Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(IdColumn(), ForeignKey("workspaces.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Team(RecordMixin, Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)


class TeamMember(TenantMixin, Base):
    __tablename__ = "team_members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "team_id", "user_id"),
        Index("ix_team_members_user", "workspace_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    user_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
