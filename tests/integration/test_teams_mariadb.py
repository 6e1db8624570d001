"""Teams and record-level visibility on MariaDB and Redis: FULLTEXT search, the Redis record cache,
races on team names and members, and another workspace's teams."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from sqlalchemy import text

from layers.db.engine import get_engine
from shared.ids import new_id
from tests.integration.wsgi_client import call
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite


def _together(count: int, action: Callable[[int], Reply]) -> list[Reply]:
    barrier = threading.Barrier(count)

    def run(i: int) -> Reply:
        barrier.wait(timeout=10)
        return action(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _count(sql: str, **params: Any) -> int:
    with get_engine().connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def _ids(reply: Reply) -> set[str]:
    assert reply.status == 200, reply.raw
    return {row["id"] for row in reply.json["data"]}


@pytest.fixture
def restricted(api: Api, firebase_issuer: FirebaseTestIssuer) -> dict[str, Any]:
    """Alice and Bob in one team, Carol alone; a contact of each; visibility restricted."""
    alice, bob, carol = (invite(api, firebase_issuer, "member") for _ in range(3))
    assert api.post("/v1/teams", {"name": "East", "member_ids": [alice.owner_user_id, bob.owner_user_id]}
                    ).status == 201
    tag = new_id().lower()[-8:]
    contacts = {}
    for key, owner in (("a", alice), ("b", bob), ("c", carol)):
        reply = api.post("/v1/contacts", {"first_name": "Quinn", "last_name": f"Orchid{key}",
                                          "email": f"{key}-{tag}@example.com", "job_title": "Botanist",
                                          "owner_id": owner.owner_user_id})
        assert reply.status == 201, reply.raw
        contacts[key] = reply.json["id"]
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200
    return {"alice": alice, "bob": bob, "carol": carol, "contacts": contacts}


def test_fulltext_search_and_lists_respect_visibility(api: Api, restricted: dict[str, Any]) -> None:
    # GIVEN three Botanists owned by Alice, Bob and Carol
    alice: Api = restricted["alice"]
    a, b, c = (restricted["contacts"][k] for k in "abc")
    # WHEN Alice runs FULLTEXT queries (MATCH … AGAINST on MariaDB), filters and lists
    words = _ids(alice.post("/v1/contacts/search", {"query": "botanist quinn"}))
    prefix = _ids(alice.post("/v1/contacts/search", {"query": "orch", "owned_by": "my_team"}))
    exact = _ids(alice.post("/v1/contacts/search", {"query": "orchidc"}))
    listed = _ids(alice.get("/v1/contacts?limit=200"))
    mine = _ids(alice.get("/v1/contacts?owned_by=me"))
    # THEN Carol's contact never appears, while the admin key finds all three
    assert words == prefix == listed == {a, b}
    assert exact == set() and mine == {a}
    assert _ids(api.post("/v1/contacts/search", {"query": "botanist quinn"})) == {a, b, c}


def test_a_cached_record_stays_invisible(api: Api, restricted: dict[str, Any], real_redis: redis.Redis) -> None:
    # GIVEN Carol's contact read by the admin key, so Redis holds it
    carols = restricted["contacts"]["c"]
    assert api.get(f"/v1/contacts/{carols}").status == 200
    assert real_redis.exists(f"rec:{api.workspace_id}:contacts:{carols}")
    # WHEN Alice and Carol read it
    # THEN Alice gets 404 from the cached path and Carol gets her record
    assert restricted["alice"].get(f"/v1/contacts/{carols}").status == 404
    assert restricted["carol"].get(f"/v1/contacts/{carols}").status == 200


def test_two_teams_created_with_one_name_make_one_team_and_one_409(api: Api) -> None:
    for _ in range(3):
        # GIVEN two requests creating the same team name at the same instant
        name = f"Race {new_id()[-8:]}"
        replies = _together(2, lambda i, name=name: call(api, "POST", "/v1/teams", {"name": name}))  # type: ignore[misc]
        # THEN one wins, the other is a 409, and there is one team
        assert sorted(r.status for r in replies) == [201, 409], [r.json for r in replies]
        assert _count("SELECT COUNT(*) FROM teams WHERE workspace_id = :w AND name = :n",
                      w=api.workspace_id, n=name) == 1


def test_one_person_added_twice_at_once_joins_once(api: Api) -> None:
    # GIVEN a team and a workspace member
    team = api.post("/v1/teams", {"name": f"Race {new_id()[-8:]}"}).json["id"]
    user = api.post("/v1/members", {"email": f"m-{new_id().lower()}@example.com", "role": "member"}).json["user_id"]
    # WHEN two requests add them at the same instant
    replies = _together(2, lambda i: call(api, "POST", f"/v1/teams/{team}/members", {"user_id": user}))
    # THEN one adds them and the other is a 409; the team has them once
    assert sorted(r.status for r in replies) == [201, 409], [r.json for r in replies]
    assert _count("SELECT COUNT(*) FROM team_members WHERE team_id = :t", t=team) == 1
    assert api.get(f"/v1/teams/{team}").json["member_ids"] == [user]


def test_another_workspace_cannot_see_or_change_teams_and_bad_writes_leave_nothing(
    api: Api, other_api: Api
) -> None:
    # GIVEN a team in workspace A
    team = api.post("/v1/teams", {"name": "East", "member_ids": [api.owner_user_id]}).json
    events_before = _count("SELECT COUNT(*) FROM outbox_events WHERE workspace_id = :w", w=api.workspace_id)
    # WHEN workspace B reads and changes it, and A sends invalid writes
    for reply in (other_api.get(f"/v1/teams/{team['id']}"), other_api.patch(f"/v1/teams/{team['id']}", {"name": "X"}),
                  other_api.delete(f"/v1/teams/{team['id']}"),
                  other_api.post(f"/v1/teams/{team['id']}/members", {"user_id": other_api.owner_user_id})):
        assert reply.status == 404, reply.raw
    assert other_api.get("/v1/teams").json["data"] == []
    assert api.post("/v1/teams", {"name": "West", "member_ids": [other_api.owner_user_id]}).status == 422
    assert api.post("/v1/teams", {"name": "East"}).status == 409
    assert api.post(f"/v1/teams/{team['id']}/members", {"user_id": other_api.owner_user_id}).status == 422
    # THEN A's team is unchanged, and no row or event was written by any of them
    assert api.get(f"/v1/teams/{team['id']}").json == team
    assert _count("SELECT COUNT(*) FROM teams WHERE workspace_id = :w", w=api.workspace_id) == 1
    assert _count("SELECT COUNT(*) FROM team_members WHERE workspace_id = :w", w=api.workspace_id) == 1
    assert _count("SELECT COUNT(*) FROM outbox_events WHERE workspace_id = :w", w=api.workspace_id) == events_before
    assert _count("SELECT COUNT(*) FROM teams WHERE workspace_id = :w", w=other_api.workspace_id) == 0
