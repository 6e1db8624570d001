"""Custom fields on MariaDB: JSON path filters and sorts per type (typed casts, exact decimals,
case-insensitive text like built-in columns), duplicate checks in SQL, concurrent unique claims,
a 63-character key through history, tenancy, and failed writes that leave nothing behind."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, text

from layers.cache.client import use_redis
from layers.db.engine import get_engine, use_engine
from shared.ids import new_id
from tests.functional.test_fields_search import FILTERS, PEOPLE, SORTABLE, People, _expected_order
from tests.integration.wsgi_client import call
from tests.support.api import Api, Reply, provision
from tests.support.custom_fields import define, define_every_type, where

ROUNDS = 4


@pytest.fixture(scope="module")
def people(mariadb_engine: Engine, real_redis: redis.Redis) -> Iterator[People]:
    """The functional tier's five contacts, written once to MariaDB for the module."""
    use_engine(mariadb_engine)
    use_redis(real_redis)
    try:
        api = provision("Custom search on MariaDB")
        define_every_type(api, "contacts")
        made = api.post("/v1/contacts/batch/create", {"inputs": [
            {"first_name": name, "custom_fields": values} for name, values in PEOPLE]})
        assert made.status == 200, made.raw
    finally:
        use_redis(None)
        use_engine(None)
    records = [r["record"] for r in made.json["results"]]
    yield People(api, {r["first_name"]: r["id"] for r in records},
                 {r["first_name"]: r["custom_fields"] for r in records})


def _names(people: People, body: dict[str, Any]) -> set[str]:
    reply = people.api.post("/v1/contacts/search", body)
    assert reply.status == 200, reply.raw
    by_id = {v: k for k, v in people.ids.items()}
    return {by_id[r["id"]] for r in reply.json["data"]}


@pytest.mark.parametrize(("key", "operator", "operands", "expected"), FILTERS,
                         ids=[f"{k}-{o}-{i}" for i, (k, o, _, _) in enumerate(FILTERS)])
def test_json_path_filters(people: People, key: str, operator: str, operands: dict[str, Any],
                           expected: set[str]) -> None:
    # GIVEN five contacts on MariaDB WHEN filtered on a custom field THEN the same rows as on SQLite
    assert _names(people, where(f"custom_fields.{key}", operator, **operands)) == expected


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", SORTABLE)
def test_json_path_sorts_page_in_order(people: People, key: str, direction: str) -> None:
    # GIVEN the contacts WHEN sorted by a custom field two per page THEN every row once, in order
    seen: list[str] = []
    body: dict[str, Any] = {"sorts": [{"property": f"custom_fields.{key}", "direction": direction}], "limit": 2}
    for _ in range(5):
        reply = people.api.post("/v1/contacts/search", body)
        assert reply.status == 200, reply.raw
        seen += [r["first_name"] for r in reply.json["data"]]
        if reply.json["next_cursor"] is None:
            break
        body["cursor"] = reply.json["next_cursor"]
    assert seen == _expected_order(people, key, direction == "desc")


def test_amounts_compare_exactly_at_full_precision(api: Api) -> None:
    # GIVEN amounts that differ in the 19th significant digit (a double cannot tell them apart)
    define(api, "contacts", "budget", "currency")
    define(api, "contacts", "score", "number")
    low = api.post("/v1/contacts", {"first_name": "Low", "custom_fields": {
        "budget": "999999999999999.9998", "score": 123456789012345}}).json
    high = api.post("/v1/contacts", {"first_name": "High", "custom_fields": {
        "budget": "999999999999999.9999", "score": 123456789012346}}).json

    # WHEN filtered and sorted on them THEN DECIMAL(19, 4) keeps them apart, and integers stay exact
    def ids(body: dict[str, Any]) -> list[str]:
        return [r["id"] for r in api.post("/v1/contacts/search", body).json["data"]]

    assert ids(where("custom_fields.budget", "GT", value="999999999999999.9998")) == [high["id"]]
    assert ids(where("custom_fields.budget", "EQ", value="999999999999999.9998")) == [low["id"]]
    assert ids(where("custom_fields.score", "EQ", value=123456789012346)) == [high["id"]]
    sort = {"sorts": [{"property": "custom_fields.budget", "direction": "desc"}], "limit": 1}
    first = api.post("/v1/contacts/search", sort).json
    second = api.post("/v1/contacts/search", {**sort, "cursor": first["next_cursor"]}).json
    assert [r["id"] for r in first["data"] + second["data"]] == [high["id"], low["id"]]


def test_custom_text_compares_like_built_in_text(api: Api) -> None:
    # GIVEN custom text values differing in case (built-in columns compare ignoring case on MariaDB)
    define(api, "contacts", "note", "text")
    upper = api.post("/v1/contacts", {"first_name": "U", "custom_fields": {"note": "Alpha"}}).json
    lower = api.post("/v1/contacts", {"first_name": "L", "custom_fields": {"note": "beta"}}).json

    # WHEN filtered and sorted THEN case does not matter, as for first_name
    found = api.post("/v1/contacts/search", where("custom_fields.note", "EQ", value="ALPHA")).json["data"]
    assert [r["id"] for r in found] == [upper["id"]]
    token = api.post("/v1/contacts/search", where("custom_fields.note", "CONTAINS_TOKEN", value="ETA")).json
    assert [r["id"] for r in token["data"]] == [lower["id"]]
    ordered = api.post("/v1/contacts/search", {"sorts": [{"property": "custom_fields.note"}]}).json["data"]
    assert [r["id"] for r in ordered] == [upper["id"], lower["id"]]


def test_duplicate_checks_run_in_sql_and_respect_accents(api: Api) -> None:
    # GIVEN a text field where two contacts share "ACME"/"acme" and two hold "José"/"Jose"
    field = define(api, "contacts", "code", "text")
    path = f"/v1/fields/{field['id']}"
    for n, code in enumerate(["ACME", "acme", "José", "Jose"]):
        assert api.post("/v1/contacts", {"first_name": f"C{n}", "custom_fields": {"code": code}}).status == 201

    # WHEN made unique THEN 409: the two ACMEs clash (case is ignored) but accents are not
    assert api.patch(path, {"unique": True}).json["count"] == 2
    acme = api.post("/v1/contacts/search", where("custom_fields.code", "EQ", value="acme")).json["data"]
    second = next(r for r in acme if r["custom_fields"]["code"] == "acme")
    assert api.patch(f"/v1/contacts/{second['id']}", {"custom_fields": {"code": "ACME 2"}}).status == 200
    assert api.patch(path, {"unique": True}).status == 200
    # ... and making a field required counts live records without a value, in SQL
    assert api.post("/v1/contacts", {"first_name": "None"}).status == 201
    assert api.patch(path, {"required": True}).json["count"] == 1


def test_a_63_character_key_is_written_with_its_history(api: Api) -> None:
    # GIVEN a field with the longest key allowed
    key = "k" * 63
    define(api, "contacts", key, "text")
    # WHEN a contact is written with it THEN history names it in full
    made = api.post("/v1/contacts", {"first_name": "A", "custom_fields": {key: "x"}})
    assert made.status == 201, made.raw
    fields = {h["field"] for h in api.get(f"/v1/contacts/{made.json['id']}/history").json["data"]}
    assert f"custom_fields.{key}" in fields


def _together(count: int, action: Callable[[int], Reply]) -> list[Reply]:
    barrier = threading.Barrier(count)

    def run(i: int) -> Reply:
        barrier.wait(timeout=10)
        return action(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _holding(workspace_id: str, value: str) -> int:
    with get_engine().connect() as connection:
        return int(connection.execute(text(
            "SELECT COUNT(*) FROM contacts WHERE workspace_id = :w "
            "AND JSON_UNQUOTE(JSON_EXTRACT(custom, '$.code')) = :v"), {"w": workspace_id, "v": value}).scalar_one())


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_creates_of_one_unique_value_make_one_record_and_one_409(api: Api, round_: int) -> None:
    # GIVEN a unique field, and two requests writing the same value at the same instant
    define(api, "contacts", "code", "text", unique=True)
    code = f"race-{new_id()}"
    replies = _together(2, lambda i: call(api, "POST", "/v1/contacts",
                                          {"first_name": f"T{i}", "custom_fields": {"code": code}}))

    # THEN exactly one wins; the loser's 409 names the winner, and one record holds the value
    assert sorted(r.status for r in replies) == [201, 409], [r.json for r in replies]
    winner = next(r for r in replies if r.status == 201)
    loser = next(r for r in replies if r.status == 409)
    assert loser.json["existing_id"] == winner.json["id"]
    assert _holding(api.workspace_id, code) == 1


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_updates_to_one_unique_value_let_one_through(api: Api, round_: int) -> None:
    # GIVEN a unique field and three contacts, each updated to the same value at the same instant
    define(api, "contacts", "code", "text", unique=True)
    made = [call(api, "POST", "/v1/contacts", {"first_name": f"U{i}"}).json for i in range(3)]
    code = f"race-{new_id()}"
    replies = _together(3, lambda i: call(api, "PATCH", f"/v1/contacts/{made[i]['id']}",
                                          {"custom_fields": {"code": code.upper() if i else code}}))

    # THEN one succeeds, the others are 409 naming it, and one record holds the value
    statuses = sorted(r.status for r in replies)
    assert statuses == [200, 409, 409], [r.json for r in replies]
    winner = next(r for r in replies if r.status == 200)
    assert {r.json["existing_id"] for r in replies if r.status == 409} == {winner.json["id"]}
    assert _holding(api.workspace_id, code) + _holding(api.workspace_id, code.upper()) == 1


def test_a_failed_write_leaves_no_record_claim_or_event(api: Api) -> None:
    # GIVEN a unique field held by a contact
    define(api, "contacts", "code", "text", unique=True)
    api.post("/v1/contacts", {"first_name": "Holder", "custom_fields": {"code": "X"}})

    def counts() -> tuple[int, int, int]:
        with get_engine().connect() as connection:
            def one(sql: str) -> int:
                return int(connection.execute(text(sql), {"w": api.workspace_id}).scalar_one())
            return (one("SELECT COUNT(*) FROM contacts WHERE workspace_id = :w"),
                    one("SELECT COUNT(*) FROM custom_unique_values WHERE workspace_id = :w"),
                    one("SELECT COUNT(*) FROM outbox_events WHERE workspace_id = :w"))

    before = counts()
    # WHEN a create clashes on the value, after the contact row itself was inserted
    assert api.post("/v1/contacts", {"first_name": "Loser", "custom_fields": {"code": "x"}}).status == 409
    # ... and a batch's second input clashes with its first
    pair = api.post("/v1/contacts/batch/create", {"inputs": [
        {"first_name": "A", "custom_fields": {"code": "Y"}}, {"first_name": "B", "custom_fields": {"code": "y"}}]})
    assert [r["status"] for r in pair.json["results"]] == [201, 409]

    # THEN only the batch's first input was written: one record, one claim, one event
    after = counts()
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (1, 1, 1)


def test_another_workspace_neither_sees_nor_uses_the_fields(api: Api, other_api: Api) -> None:
    # GIVEN a field and a contact with a value in one workspace
    field = define(api, "contacts", "tier", "single_select", options=["Gold"])
    api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"tier": "Gold"}})

    # WHEN another workspace looks for them THEN nothing is there
    assert other_api.get("/v1/fields").json["data"] == []
    assert other_api.get(f"/v1/fields/{field['id']}?include_archived=true").status == 404
    assert other_api.patch(f"/v1/fields/{field['id']}", {"label": "Mine"}).status == 404
    assert other_api.delete(f"/v1/fields/{field['id']}").status == 404
    assert other_api.post("/v1/contacts/search", where("custom_fields.tier", "EQ", value="Gold")).status == 422
    assert other_api.post("/v1/contacts", {"first_name": "B", "custom_fields": {"tier": "Gold"}}).status == 422
    # ... and the owner's field is untouched
    assert api.get(f"/v1/fields/{field['id']}").json == field
