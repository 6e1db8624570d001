"""Races on MariaDB: unique values, concurrent updates and Idempotency-Key, from real threads.

Each scenario releases its threads together with a Barrier and repeats a few times: a race
that is lost only sometimes must still never lose data.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text

from layers.db.engine import get_engine
from shared.ids import new_id
from tests.integration.wsgi_client import call
from tests.support.api import Api, Reply

ROUNDS = 4


def _together(count: int, action: Callable[[int], Reply]) -> list[Reply]:
    """Run `action(i)` in `count` threads released at the same instant."""
    barrier = threading.Barrier(count)

    def run(i: int) -> Reply:
        barrier.wait(timeout=10)
        return action(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _rows_with_email(email: str) -> int:
    with get_engine().connect() as connection:
        count = connection.execute(text("SELECT COUNT(*) FROM contacts WHERE email = :e"), {"e": email})
        return int(count.scalar_one())


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_creates_of_the_same_email_make_one_record_and_one_409(api: Api, round_: int) -> None:
    # GIVEN two requests creating the same email at the same instant
    email = f"race-{new_id().lower()}@example.com"
    replies = _together(2, lambda i: call(api, "POST", "/v1/contacts", {"email": email, "first_name": f"T{i}"}))

    # THEN exactly one wins, and the loser's 409 names the winner
    statuses = sorted(r.status for r in replies)
    assert statuses == [201, 409], [r.json for r in replies]
    winner = next(r for r in replies if r.status == 201)
    loser = next(r for r in replies if r.status == 409)
    assert loser.header("Content-Type") == "application/problem+json"
    assert loser.json["existing_id"] == winner.json["id"]
    assert _rows_with_email(email) == 1


def test_a_batch_upsert_racing_a_create_never_duplicates(api: Api) -> None:
    for _ in range(ROUNDS):
        email = f"upsert-{new_id().lower()}@example.com"

        def act(i: int, email: str = email) -> Reply:
            if i == 0:
                return call(api, "POST", "/v1/contacts", {"email": email})
            return call(api, "POST", "/v1/contacts/batch/upsert", {"inputs": [{"email": email, "job_title": "Up"}]})

        create, upsert = _together(2, act)
        # the create wins (201) or loses to the upsert's insert (409); the upsert inserts, updates or loses (409)
        assert create.status in (201, 409), create.json
        assert upsert.status in (200, 207), upsert.json
        assert upsert.json["results"][0]["status"] in (200, 201, 409)
        assert _rows_with_email(email) == 1


def _contact(api: Api) -> dict[str, Any]:
    reply = call(api, "POST", "/v1/contacts", {"email": f"p-{new_id().lower()}@example.com", "job_title": "Start"})
    assert reply.status == 201
    return reply.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_patches_never_lose_an_update_silently(api: Api, round_: int) -> None:
    # GIVEN one contact and six writers patching it at once, each with its own value
    record = _contact(api)
    path = f"/v1/contacts/{record['id']}"
    replies = _together(6, lambda i: call(api, "PATCH", path, {"job_title": f"Writer {i}", "tags": [f"w{i}"]}))

    # THEN every writer either succeeded or was told it lost (never a silent overwrite)
    assert {r.status for r in replies} <= {200, 409, 412}, [r.json for r in replies]
    won = [r for r in replies if r.status == 200]
    assert won, "at least the first writer succeeds"
    # ... each success produced its own version, and the record went up by exactly that many
    versions = sorted(int(r.header("ETag").strip('"v')) for r in won)  # type: ignore[union-attr]
    assert versions == list(range(2, 2 + len(won)))
    final = call(api, "GET", path)
    assert final.header("ETag") == f'"v{1 + len(won)}"'
    # ... the record is exactly the last successful write (the cache too: GET may be served from Redis)
    last = next(r for r in won if r.header("ETag") == final.header("ETag"))
    assert final.json == last.json
    with get_engine().connect() as connection:
        row = connection.execute(text("SELECT job_title, version FROM contacts WHERE id = :id"),
                                 {"id": record["id"]}).one()
    assert (row.job_title, row.version) == (last.json["job_title"], 1 + len(won))
    # ... and history holds one update per success
    history = call(api, "GET", f"{path}/history?limit=200").json["data"]
    assert sum(1 for h in history if h["action"] == "updated" and h["field"] == "job_title") == len(won)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_conditional_patches_let_exactly_one_through(api: Api, round_: int) -> None:
    # GIVEN five writers that all read version 1
    record = _contact(api)
    path = f"/v1/contacts/{record['id']}"
    replies = _together(5, lambda i: call(api, "PATCH", path, {"job_title": f"Cond {i}"}, headers={"If-Match": '"v1"'}))

    # THEN one wins; every other one is told its precondition failed: the record moved past v1 (a lost race
    # at UPDATE … WHERE version = 1 is that same failed precondition, not a 409)
    statuses = sorted(r.status for r in replies)
    assert statuses == [200, 412, 412, 412, 412], [(r.status, r.json) for r in replies]
    assert all(r.header("Content-Type") == "application/problem+json" for r in replies if r.status == 412)
    winner = next(r for r in replies if r.status == 200)
    final = call(api, "GET", path)
    assert final.header("ETag") == '"v2"' and final.json == winner.json


def _created(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = call(api, "POST", path, body)
    assert reply.status == 201, reply.json
    return reply.json  # type: ignore[no-any-return]


# method, path, the body of writer i, and the ETag every writer read
Conditional = tuple[str, str, Callable[[int], dict[str, Any] | None], str]


def _contact_archive(api: Api) -> Conditional:
    return "DELETE", f"/v1/contacts/{_contact(api)['id']}", lambda i: None, '"v1"'


def _deal_stage_move(api: Api) -> Conditional:
    deal = _created(api, "/v1/deals", {"name": f"Deal {new_id()}"})
    stages = call(api, "GET", f"/v1/pipelines/{deal['pipeline_id']}").json["stages"]
    return "POST", f"/v1/deals/{deal['id']}/stage", lambda i: {"stage_id": stages[1 + i % 2]["id"]}, '"v1"'


def _task_completion(api: Api) -> Conditional:
    task = _created(api, "/v1/activities", {"kind": "task", "subject": "Call back", "owner_id": api.owner_user_id})
    return "POST", f"/v1/activities/{task['id']}/complete", lambda i: None, '"v1"'


def _field_edit(api: Api) -> Conditional:
    field = _created(api, "/v1/fields", {"object_type": "contacts", "key": f"k{new_id().lower()}", "label": "L",
                                         "type": "text"})
    return "PATCH", f"/v1/fields/{field['id']}", lambda i: {"label": f"Label {i}"}, '"v1"'


def _team_rename(api: Api) -> Conditional:
    team = _created(api, "/v1/teams", {"name": f"Team {new_id()}"})
    return "PATCH", f"/v1/teams/{team['id']}", lambda i: {"name": f"Team {i} {new_id()}"}, '"v1"'


def _pipeline_rename(api: Api) -> Conditional:
    path = f"/v1/pipelines/{call(api, 'GET', '/v1/pipelines').json['data'][0]['id']}"  # the workspace's default
    seen = call(api, "GET", path).header("ETag")
    assert seen is not None
    return "PATCH", path, lambda i: {"name": f"Pipeline {i} {new_id()}"}, seen


def _automation_rename(api: Api) -> Conditional:
    rule = _created(api, "/v1/automations", {"name": "Rule", "object_type": "contacts",
                                             "trigger": {"type": "record_created"},
                                             "actions": [{"type": "add_tag", "tag": "auto"}]})
    return "PATCH", f"/v1/automations/{rule['id']}", lambda i: {"name": f"Rule {i}"}, '"v1"'


@pytest.mark.parametrize("setup", [_contact_archive, _deal_stage_move, _task_completion, _field_edit, _team_rename,
                                   _pipeline_rename, _automation_rename], ids=lambda setup: setup.__name__[1:])
@pytest.mark.parametrize("round_", range(2))
def test_every_conditional_write_lets_one_through_and_answers_412_to_the_others(
        api: Api, setup: Callable[[Api], Conditional], round_: int) -> None:
    # GIVEN five writers that all read the same version of a thing, on each path that honours If-Match
    method, path, body, seen = setup(api)
    replies = _together(5, lambda i: call(api, method, path, body(i), headers={"If-Match": seen}))

    # THEN exactly one succeeds and every other one is 412
    statuses = sorted(r.status for r in replies)
    assert statuses[0] < 300 and statuses[1:] == [412] * 4, [(r.status, r.json) for r in replies]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_identical_posts_with_one_idempotency_key_create_one_row(api: Api, round_: int) -> None:
    # GIVEN three identical creates sharing an Idempotency-Key, sent at the same instant
    email = f"idem-{new_id().lower()}@example.com"
    key = f"key-{new_id()}"
    replies = _together(3, lambda i: call(api, "POST", "/v1/contacts", {"email": email},
                                          headers={"Idempotency-Key": key}))

    # THEN one did the work; each other one is a replay of it or a 409 "still running"
    created = [r for r in replies if r.status == 201 and r.header("Idempotent-Replayed") is None]
    assert len(created) == 1, [(r.status, r.json) for r in replies]
    for reply in replies:
        if reply is created[0]:
            continue
        if reply.status == 201:
            assert reply.header("Idempotent-Replayed") == "true"
            assert reply.json == created[0].json
        else:
            assert reply.status == 409, reply.json
            assert reply.header("Retry-After") is not None
    assert _rows_with_email(email) == 1
    # ... and a later retry replays the first answer
    again = call(api, "POST", "/v1/contacts", {"email": email}, headers={"Idempotency-Key": key})
    assert again.status == 201 and again.json == created[0].json
    assert again.header("Idempotent-Replayed") == "true"
