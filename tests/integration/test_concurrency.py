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

    # THEN one wins; the others are told the record moved on (412) or changed under them (409)
    statuses = sorted(r.status for r in replies)
    assert statuses.count(200) == 1 and set(statuses) <= {200, 409, 412}, statuses
    winner = next(r for r in replies if r.status == 200)
    final = call(api, "GET", path)
    assert final.header("ETag") == '"v2"' and final.json == winner.json


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
