"""Teams of workspace members: who shares records with whom when the workspace restricts visibility.

A team is configuration, not a CRM record: deleting one removes it and its memberships at once (the
people in it stop seeing each other's records on their next request), and frees its name.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from functions.workspaces import repository
from functions.workspaces.models import Team, TeamMember
from functions.workspaces.schemas import TeamCreate, TeamMemberRead, TeamPage, TeamRead, TeamUpdate
from functions.workspaces.service import ensure_members
from layers.db.uow import UnitOfWork
from layers.queue.outbox import emit
from shared.clock import utcnow
from shared.context import Scope
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import Conflict, NotFound
from shared.ids import new_id
from shared.settings import get_settings


@dataclass(frozen=True)
class TeamView:
    team: TeamRead
    version: int  # the ETag


def teammates(uow: UnitOfWork, user_id: str) -> set[str]:
    """Everyone who shares a team with `user_id` in the unit of work's workspace (for "owned by my team")."""
    assert uow.scope is not None
    return repository.teammates_of(uow.session, uow.scope.workspace_id, user_id)



def list_teams(scope: Scope, *, limit: int, cursor: str | None) -> TeamPage:
    secret = get_settings().cursor_secret
    after = decode_cursor(cursor, secret).get("after") if cursor else None
    with UnitOfWork(scope) as uow:
        rows = repository.teams_page(uow.session, after_name=after, limit=limit)
        more, rows = len(rows) > limit, rows[:limit]
        members = repository.team_member_ids(uow.session, [t.id for t in rows])
    return TeamPage(data=[_read(t, members[t.id]) for t in rows],
                    next_cursor=encode_cursor({"after": rows[-1].name}, secret) if more else None)


def get_team(scope: Scope, team_id: str) -> TeamView:
    with UnitOfWork(scope) as uow:
        return _view(uow, _team_or_404(uow, team_id))


def create_team(scope: Scope, data: TeamCreate) -> TeamView:
    with UnitOfWork(scope) as uow:
        _ensure_name_free(uow, data.name, None)
        member_ids = list(dict.fromkeys(data.member_ids))  # repeated ids count once
        ensure_members(uow, member_ids, field="member_ids")
        now = utcnow()
        team = Team(id=new_id(), name=data.name, created_at=now, updated_at=now)
        uow.session.add(team)
        uow.session.add_all([TeamMember(id=new_id(), team_id=team.id, user_id=user_id, created_at=now)
                             for user_id in member_ids])
        _flush(uow, f"a team named {data.name!r} already exists")
        view = _view(uow, team)
        emit(uow, event_type="team.created", object_type="teams", record_id=team.id,
             data={"object": view.team.model_dump(mode="json")})
        uow.commit()
    return view


def update_team(scope: Scope, team_id: str, data: TeamUpdate, *, expected_version: int | None) -> TeamView:
    with UnitOfWork(scope) as uow:
        team = _team_or_404(uow, team_id, expected_version)
        if data.name != team.name:
            _ensure_name_free(uow, data.name, team.id)
            team.name = data.name
            team.updated_at = utcnow()
            _flush(uow, f"a team named {data.name!r} already exists")
        view = _view(uow, team)
        emit(uow, event_type="team.updated", object_type="teams", record_id=team.id,
             data={"object": view.team.model_dump(mode="json")})
        uow.commit()
    return view


def delete_team(scope: Scope, team_id: str, *, expected_version: int | None) -> None:
    with UnitOfWork(scope) as uow:
        team = _team_or_404(uow, team_id, expected_version)
        repository.delete_team_members(uow.session, team_id=team.id)
        uow.session.delete(team)
        emit(uow, event_type="team.deleted", object_type="teams", record_id=team_id, data={"id": team_id})
        uow.commit()


def add_member(scope: Scope, team_id: str, user_id: str) -> TeamMemberRead:
    with UnitOfWork(scope) as uow:
        team = _team_or_404(uow, team_id)
        ensure_members(uow, [user_id], field="user_id")
        if repository.team_member(uow.session, team_id, user_id) is not None:
            raise Conflict(f"{user_id} is already in the team", extra={"existing_id": user_id})
        now = utcnow()
        member = TeamMember(id=new_id(), team_id=team_id, user_id=user_id, created_at=now)
        uow.session.add(member)
        team.updated_at = now  # the team's version (its ETag) moves with its members
        _flush(uow, f"{user_id} is already in the team")
        emit(uow, event_type="team.member_added", object_type="teams", record_id=team_id,
             data={"team_id": team_id, "user_id": user_id})
        uow.commit()
    return TeamMemberRead(team_id=team_id, user_id=user_id, added_at=now)


def remove_member(scope: Scope, team_id: str, user_id: str) -> None:
    with UnitOfWork(scope) as uow:
        team = _team_or_404(uow, team_id)
        member = repository.team_member(uow.session, team_id, user_id)
        if member is None:
            raise NotFound(f"{user_id} is not in team {team_id}")
        uow.session.delete(member)
        team.updated_at = utcnow()
        _flush(uow, "the team changed at the same time; retry")
        emit(uow, event_type="team.member_removed", object_type="teams", record_id=team_id,
             data={"team_id": team_id, "user_id": user_id})
        uow.commit()


def _team_or_404(uow: UnitOfWork, team_id: str, expected_version: int | None = None) -> Team:
    team = uow.session.get(Team, team_id)
    if team is None or team.archived_at is not None:
        raise NotFound(f"no team with id {team_id}")
    uow.require_version(team, expected_version, "team")
    return team


def _ensure_name_free(uow: UnitOfWork, name: str, team_id: str | None) -> None:
    existing = repository.team_by_name(uow.session, name)
    if existing is not None and existing.id != team_id:
        raise Conflict(f"a team named {name!r} already exists", extra={"existing_id": existing.id})


def _flush(uow: UnitOfWork, clash: str) -> None:
    """Flush; a concurrent request that took the same name or member is a 409; one that changed the team first
    is a 409, or a 412 under If-Match."""
    try:
        uow.flush("team")
    except IntegrityError:
        raise Conflict(clash) from None


def _view(uow: UnitOfWork, team: Team) -> TeamView:
    uow.session.flush()
    members = repository.team_member_ids(uow.session, [team.id])[team.id]
    return TeamView(_read(team, members), team.version)


def _read(team: Team, member_ids: list[str]) -> TeamRead:
    return TeamRead(id=team.id, name=team.name, member_ids=member_ids, created_at=team.created_at,
                    updated_at=team.updated_at)
