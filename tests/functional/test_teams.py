"""Teams and the workspace's settings through the HTTP contract: who may change them, validation,
conflicts, ETags, events, and nothing half-written on failure."""
from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from functions.workspaces.models import Team, TeamMember
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from shared.context import system_scope
from shared.ids import new_id
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite

UNKNOWN = "01JAAAAAAAAAAAAAAAAAAAAAAA"
SECOND_PLACEHOLDER = "01JBBBBBBBBBBBBBBBBBBBBBBB"  # the user id in the member sample events


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.json["status"] == status
    return reply.json  # type: ignore[no-any-return]


def member_id(api: Api, role: str = "member") -> str:
    reply = api.post("/v1/members", {"email": f"m-{new_id().lower()}@example.com", "role": role})
    assert reply.status == 201, reply.raw
    return str(reply.json["user_id"])


def create_team(api: Api, name: str, member_ids: list[str] | None = None) -> dict[str, Any]:
    reply = api.post("/v1/teams", {"name": name, "member_ids": member_ids or []})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def stored(api: Api) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(teams as (id, name), memberships as (team id, user id), team event types) of the workspace."""
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        teams = [(t.id, t.name) for t in uow.session.scalars(select(Team).order_by(Team.id))]
        members = [(m.team_id, m.user_id) for m in uow.session.scalars(select(TeamMember).order_by(TeamMember.id))]
        events = [e.event_type for e in uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.object_type == "teams").order_by(OutboxEvent.id))]
    return teams, members, events


# ---- the workspace ------------------------------------------------------------------------------------
def test_workspace_settings_read_and_change(api: Api) -> None:
    # GIVEN a fresh workspace
    before = api.get("/v1/workspace")
    # WHEN an admin renames it and turns record-level visibility on
    changed = api.patch("/v1/workspace", {"name": "Renamed", "restrict_member_visibility": True})
    after = api.get("/v1/workspace")
    # THEN the setting starts off, and reads back changed
    assert before.status == 200
    assert before.json["id"] == api.workspace_id and before.json["restrict_member_visibility"] is False
    assert changed.status == 200 and changed.json["name"] == "Renamed"
    assert after.json["restrict_member_visibility"] is True and after.json["name"] == "Renamed"
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        events = [e.payload for e in uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.event_type == "workspace.updated"))]
    assert [e["data"]["changes"]["restrict_member_visibility"] for e in events] == [{"old": False, "new": True}]


@pytest.mark.parametrize("body", [{"restrict_member_visibility": "yes"}, {"name": ""}, {"name": None},
                                  {"plan": "gold"}])
def test_workspace_update_validates_and_changes_nothing(api: Api, body: dict[str, Any]) -> None:
    # GIVEN a workspace WHEN it is patched with a bad body
    reply = api.patch("/v1/workspace", body)
    # THEN 422 and nothing changed
    assert_problem(reply, 422)
    assert api.get("/v1/workspace").json["name"] == "Test"


def test_only_admins_change_the_workspace_but_everyone_reads_it(
    api: Api, firebase_issuer: FirebaseTestIssuer
) -> None:
    # GIVEN a member, a viewer, and a read+write API key
    member = invite(api, firebase_issuer, "member")
    viewer = invite(api, firebase_issuer, "viewer")
    writer = api.with_key(api.post("/v1/api-keys", {"name": "w", "scopes": ["read", "write"]}).json["key"])
    # WHEN each reads the workspace and tries to turn visibility on
    reads = [c.get("/v1/workspace") for c in (member, viewer, writer)]
    writes = [c.patch("/v1/workspace", {"restrict_member_visibility": True}) for c in (member, viewer, writer)]
    # THEN reads work (with the caller's role for people), writes are 403, and the setting is unchanged
    assert [r.status for r in reads] == [200, 200, 200]
    assert [r.json["role"] for r in reads] == ["member", "viewer", None]
    for reply in writes:
        assert_problem(reply, 403)
    assert api.get("/v1/workspace").json["restrict_member_visibility"] is False


# ---- teams ----------------------------------------------------------------------------------------------
def test_team_lifecycle_with_members_etags_and_events(api: Api) -> None:
    # GIVEN two workspace members
    first, second = member_id(api), member_id(api)
    # WHEN a team is created with one, the other is added, the first removed, the team renamed and deleted
    created = api.post("/v1/teams", {"name": "East", "member_ids": [first, first]})
    team_id = created.json["id"]
    added = api.post(f"/v1/teams/{team_id}/members", {"user_id": second})
    after_add = api.get(f"/v1/teams/{team_id}")
    removed = api.delete(f"/v1/teams/{team_id}/members/{first}")
    renamed = api.patch(f"/v1/teams/{team_id}", {"name": "East Coast"}, headers={"If-Match": '"v3"'})
    deleted = api.delete(f"/v1/teams/{team_id}")
    # THEN each step answers as documented, the ETag moves with every change, and each one is an event
    assert created.status == 201 and created.header("Location") == f"/v1/teams/{team_id}"
    assert created.json["member_ids"] == [first] and created.header("ETag") == '"v1"'
    assert added.status == 201 and added.json["user_id"] == second and added.json["team_id"] == team_id
    assert after_add.json["member_ids"] == [first, second] and after_add.header("ETag") == '"v2"'
    assert removed.status == 204
    assert renamed.status == 200 and renamed.json == {**renamed.json, "name": "East Coast", "member_ids": [second]}
    assert renamed.header("ETag") == '"v4"'
    assert deleted.status == 204
    assert_problem(api.get(f"/v1/teams/{team_id}"), 404)
    teams, members, events = stored(api)
    assert teams == [] and members == []
    assert events == ["team.created", "team.member_added", "team.member_removed", "team.updated", "team.deleted"]


def test_team_get_answers_304_for_its_etag(api: Api) -> None:
    # GIVEN a team and its ETag
    team = api.post("/v1/teams", {"name": "North"})
    # WHEN it is read again with If-None-Match
    again = api.get(f"/v1/teams/{team.json['id']}", headers={"If-None-Match": team.header("ETag") or ""})
    # THEN 304
    assert again.status == 304


def test_teams_list_pages_by_name(api: Api) -> None:
    # GIVEN five teams created out of order
    for name in ("Delta", "Alpha", "Echo", "Charlie", "Bravo"):
        create_team(api, name)
    # WHEN they are listed two at a time
    names: list[str] = []
    cursor = None
    while True:
        page = api.get("/v1/teams?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200 and len(page.json["data"]) <= 2
        names += [t["name"] for t in page.json["data"]]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    # THEN every team appears once, by name
    assert names == ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]


def test_team_names_are_unique_and_a_clash_writes_nothing(api: Api) -> None:
    # GIVEN a team
    first = create_team(api, "Sales")
    other = create_team(api, "Support")
    before = stored(api)
    # WHEN another is created with its name, and the second is renamed to it
    again = api.post("/v1/teams", {"name": "Sales"})
    rename = api.patch(f"/v1/teams/{other['id']}", {"name": "Sales"})
    # THEN both are 409 naming the existing team, and nothing changed
    assert assert_problem(again, 409)["existing_id"] == first["id"]
    assert assert_problem(rename, 409)["existing_id"] == first["id"]
    assert stored(api) == before


@pytest.mark.parametrize("body, field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({}, "name"),
    ({"name": "A", "member_ids": "everyone"}, "member_ids"),
    ({"name": "A", "colour": "red"}, "colour"),
])
def test_team_create_validates_its_body(api: Api, body: dict[str, Any], field: str) -> None:
    # GIVEN a bad team body WHEN it is posted
    reply = api.post("/v1/teams", body)
    # THEN 422 naming the field, and nothing is written
    problem = assert_problem(reply, 422)
    assert field in {e["field"] for e in problem["errors"]}
    assert stored(api) == ([], [], [])


def test_team_members_must_be_workspace_members(api: Api, other_api: Api) -> None:
    # GIVEN a team, and a person who belongs to another workspace only
    team = create_team(api, "East")
    outsider = other_api.owner_user_id
    # WHEN the outsider is put in a new team and added to the existing one
    created = api.post("/v1/teams", {"name": "West", "member_ids": [api.owner_user_id, outsider]})
    added = api.post(f"/v1/teams/{team['id']}/members", {"user_id": outsider})
    # THEN both are 422 and nothing was written
    assert_problem(created, 422)
    assert_problem(added, 422)
    teams, members, _ = stored(api)
    assert teams == [(team["id"], "East")] and members == []


def test_adding_a_member_twice_is_409_and_removing_a_non_member_is_404(api: Api) -> None:
    # GIVEN a team with one member
    user = member_id(api)
    team = create_team(api, "East", [user])
    # WHEN they are added again, and someone who is not in it is removed
    again = api.post(f"/v1/teams/{team['id']}/members", {"user_id": user})
    missing = api.delete(f"/v1/teams/{team['id']}/members/{api.owner_user_id}")
    # THEN 409 and 404, and the team still has its one member
    assert_problem(again, 409)
    assert_problem(missing, 404)
    assert api.get(f"/v1/teams/{team['id']}").json["member_ids"] == [user]


def test_unknown_team_is_404_on_every_route(api: Api) -> None:
    # GIVEN no team WHEN every team route names an unknown id THEN each is 404
    for reply in (api.get(f"/v1/teams/{UNKNOWN}"), api.patch(f"/v1/teams/{UNKNOWN}", {"name": "X"}),
                  api.delete(f"/v1/teams/{UNKNOWN}"),
                  api.post(f"/v1/teams/{UNKNOWN}/members", {"user_id": api.owner_user_id}),
                  api.delete(f"/v1/teams/{UNKNOWN}/members/{api.owner_user_id}")):
        assert_problem(reply, 404)


def test_stale_if_match_is_412_and_changes_nothing(api: Api) -> None:
    # GIVEN a team that has changed since version 1
    team = create_team(api, "East")
    api.patch(f"/v1/teams/{team['id']}", {"name": "East 2"})
    # WHEN it is renamed and deleted with If-Match of version 1
    rename = api.patch(f"/v1/teams/{team['id']}", {"name": "East 3"}, headers={"If-Match": '"v1"'})
    delete = api.delete(f"/v1/teams/{team['id']}", headers={"If-Match": '"v1"'})
    # THEN 412 and the team is as it was
    assert_problem(rename, 412)
    assert_problem(delete, 412)
    assert api.get(f"/v1/teams/{team['id']}").json["name"] == "East 2"


def test_only_admins_manage_teams_but_everyone_reads_them(api: Api, firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a team, a member and a viewer
    member = invite(api, firebase_issuer, "member")
    viewer = invite(api, firebase_issuer, "viewer")
    team = create_team(api, "East")
    # WHEN they read teams and try every change
    reads = [c.get(path) for c in (member, viewer) for path in ("/v1/teams", f"/v1/teams/{team['id']}")]
    writes = [
        call for c in (member, viewer) for call in (
            c.post("/v1/teams", {"name": "Mine"}),
            c.patch(f"/v1/teams/{team['id']}", {"name": "Mine"}),
            c.post(f"/v1/teams/{team['id']}/members", {"user_id": c.owner_user_id}),
            c.delete(f"/v1/teams/{team['id']}"),
        )
    ]
    # THEN reads work, every change is 403, and nothing changed
    assert [r.status for r in reads] == [200, 200, 200, 200]
    for reply in writes:
        assert_problem(reply, 403)
    teams, members, _ = stored(api)
    assert teams == [(team["id"], "East")] and members == []


def test_removing_someone_from_the_workspace_takes_them_out_of_their_teams(api: Api) -> None:
    # GIVEN a member in two teams
    user = member_id(api)
    east = create_team(api, "East", [user, api.owner_user_id])
    west = create_team(api, "West", [user])
    # WHEN they leave the workspace
    assert api.delete(f"/v1/members/{user}").status == 204
    # THEN they are in no team any more
    assert api.get(f"/v1/teams/{east['id']}").json["member_ids"] == [api.owner_user_id]
    assert api.get(f"/v1/teams/{west['id']}").json["member_ids"] == []


def test_another_workspace_cannot_see_or_change_teams(api: Api, other_api: Api) -> None:
    # GIVEN a team in workspace A
    team = create_team(api, "East", [api.owner_user_id])
    # WHEN workspace B lists, reads, renames, deletes it and changes its members
    listed = other_api.get("/v1/teams")
    replies = [other_api.get(f"/v1/teams/{team['id']}"), other_api.patch(f"/v1/teams/{team['id']}", {"name": "X"}),
               other_api.post(f"/v1/teams/{team['id']}/members", {"user_id": other_api.owner_user_id}),
               other_api.delete(f"/v1/teams/{team['id']}/members/{api.owner_user_id}"),
               other_api.delete(f"/v1/teams/{team['id']}")]
    # THEN it does not exist for B, and it is unchanged for A
    assert listed.json["data"] == []
    for reply in replies:
        assert_problem(reply, 404)
    assert api.get(f"/v1/teams/{team['id']}").json == team


def test_the_team_member_sample_events_succeed_with_real_ids(api: Api) -> None:
    # GIVEN a team and a workspace member, and the two member events with their ids swapped in
    from tests.functional.test_events import EVENTS, PLACEHOLDER
    from tiers.invoke import invoke_handler

    team = create_team(api, "Real")
    user = member_id(api)

    def realised(name: str) -> dict[str, Any]:
        text = (EVENTS / f"{name}.json").read_text().replace(PLACEHOLDER, team["id"])
        return json.loads(text.replace(SECOND_PLACEHOLDER, user))  # type: ignore[no-any-return]

    # WHEN the add event, then the remove event, are invoked on their handlers
    added = invoke_handler("workspaces_teams_members_add", realised("workspaces_teams_members_add_by_ids"),
                           api_key=api.api_key)
    members_after_add = api.get(f"/v1/teams/{team['id']}").json["member_ids"]
    removed = invoke_handler("workspaces_teams_members_remove", realised("workspaces_teams_members_remove_by_ids"),
                             api_key=api.api_key)
    # THEN the person joins the team, then leaves it
    assert added["statusCode"] == 201, added["body"]
    assert members_after_add == [user]
    assert removed["statusCode"] == 204, removed["body"]
    assert api.get(f"/v1/teams/{team['id']}").json["member_ids"] == []
