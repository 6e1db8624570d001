"""Queries for people, workspaces, memberships and API keys."""
from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from functions.workspaces.models import ApiKey, Membership, Team, TeamMember, User, Workspace


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).first()


def user_by_firebase_uid(session: Session, uid: str) -> User | None:
    return session.scalars(select(User).where(User.firebase_uid == uid)).first()


def memberships_of(session: Session, user_id: str) -> list[tuple[Membership, Workspace]]:
    """Every workspace of one person (an unscoped session: it spans workspaces by design)."""
    statement = (
        select(Membership, Workspace)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.workspace_id)
    )
    return [(m, w) for m, w in session.execute(statement).all()]


def membership(session: Session, user_id: str) -> Membership | None:
    return session.scalars(select(Membership).where(Membership.user_id == user_id)).first()


def members_page(session: Session, *, after_user_id: str | None, limit: int) -> list[tuple[Membership, User]]:
    statement = select(Membership, User).join(User, User.id == Membership.user_id).order_by(Membership.user_id)
    if after_user_id:
        statement = statement.where(Membership.user_id > after_user_id)
    return [(m, u) for m, u in session.execute(statement.limit(limit + 1)).all()]


def count_owners(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Membership).where(Membership.role == "owner")) or 0


def members_among(session: Session, user_ids: list[str]) -> set[str]:
    return set(session.scalars(select(Membership.user_id).where(Membership.user_id.in_(user_ids))))


def live_api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))).first()


def api_keys_page(session: Session, *, after_id: str | None, limit: int) -> list[ApiKey]:
    statement = select(ApiKey).order_by(ApiKey.id.desc())
    if after_id:
        statement = statement.where(ApiKey.id < after_id)
    return list(session.scalars(statement.limit(limit + 1)))


def teammates_of(session: Session, workspace_id: str, user_id: str) -> set[str]:
    """Everyone who shares a team with the user (explicit workspace: the session may be unscoped)."""
    teams = select(TeamMember.team_id).where(TeamMember.workspace_id == workspace_id, TeamMember.user_id == user_id)
    statement = select(TeamMember.user_id).where(TeamMember.workspace_id == workspace_id,
                                                 TeamMember.team_id.in_(teams))
    return set(session.scalars(statement))


def team_by_name(session: Session, name: str) -> Team | None:
    return session.scalars(select(Team).where(Team.name == name)).first()


def teams_page(session: Session, *, after_name: str | None, limit: int) -> list[Team]:
    statement = select(Team).where(Team.archived_at.is_(None)).order_by(Team.name)
    if after_name is not None:
        statement = statement.where(Team.name > after_name)
    return list(session.scalars(statement.limit(limit + 1)))


def team_member_ids(session: Session, team_ids: list[str]) -> dict[str, list[str]]:
    """Each team's member user ids, in the order they joined."""
    members: dict[str, list[str]] = {team_id: [] for team_id in team_ids}
    if team_ids:
        statement = (select(TeamMember.team_id, TeamMember.user_id)
                     .where(TeamMember.team_id.in_(team_ids)).order_by(TeamMember.created_at, TeamMember.id))
        for team_id, user_id in session.execute(statement):
            members[team_id].append(user_id)
    return members


def team_member(session: Session, team_id: str, user_id: str) -> TeamMember | None:
    return session.scalars(select(TeamMember).where(TeamMember.team_id == team_id,
                                                    TeamMember.user_id == user_id)).first()


def delete_team_members(session: Session, *, team_id: str | None = None, user_id: str | None = None) -> None:
    assert team_id is not None or user_id is not None, "name the team or the user"
    statement = delete(TeamMember)
    if team_id is not None:
        statement = statement.where(TeamMember.team_id == team_id)
    if user_id is not None:
        statement = statement.where(TeamMember.user_id == user_id)
    session.execute(statement)
