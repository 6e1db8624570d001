"""GET /v1/{object}/{id}/history: one entry per changed field, newest first, cursor-paged."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.support.api import Api, Reply

ENTRY_FIELDS = {"id", "record_id", "action", "field", "old_value", "new_value", "actor", "source", "request_id",
                "changed_at"}


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.json["instance"] == reply.header("X-Request-Id")
    return reply.json  # type: ignore[no-any-return]


def full_history(api: Api, path: str, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    entries: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        reply = api.get(f"{path}/history?limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200, reply.raw
        entries += reply.json["data"]
        pages += 1
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return entries, pages


@pytest.fixture
def lived(api: Api) -> tuple[str, dict[str, str]]:
    """A contact created, updated, archived and restored; its path and each step's request id."""
    created = api.post("/v1/contacts", {"email": "h@example.com", "first_name": "Hal"})
    path = f"/v1/contacts/{created.json['id']}"
    updated = api.patch(path, {"job_title": "CTO", "first_name": "Harold"})
    archived = api.delete(path)
    restored = api.post(f"{path}/restore")
    assert [r.status for r in (created, updated, archived, restored)] == [201, 200, 204, 200]
    steps = {"created": created, "updated": updated, "archived": archived, "restored": restored}
    return path, {action: reply.header("X-Request-Id") or "" for action, reply in steps.items()}


def test_history_lists_every_change_newest_first(api: Api, lived: tuple[str, dict[str, str]]) -> None:
    # GIVEN a contact that was created, updated, archived and restored
    path, request_ids = lived

    # WHEN its history is read
    reply = api.get(f"{path}/history")

    # THEN one entry per changed field, newest first, each saying who, how and when
    assert reply.status == 200
    entries = reply.json["data"]
    assert reply.json["next_cursor"] is None
    assert [e["action"] for e in entries] == ["restored", "archived", "updated", "updated", "created", "created"]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_action.setdefault(entry["action"], []).append(entry)
    assert {(e["field"], e["old_value"], e["new_value"]) for e in by_action["created"]} == {
        ("email", None, "h@example.com"), ("first_name", None, "Hal")}
    assert {(e["field"], e["old_value"], e["new_value"]) for e in by_action["updated"]} == {
        ("job_title", None, "CTO"), ("first_name", "Hal", "Harold")}
    [archived], [restored] = by_action["archived"], by_action["restored"]
    assert archived["field"] == "archived_at" and archived["old_value"] is None and archived["new_value"]
    assert restored["field"] == "archived_at" and restored["old_value"] == archived["new_value"]
    assert restored["new_value"] is None
    record_id = path.rsplit("/", 1)[1]
    for entry in entries:
        assert set(entry) == ENTRY_FIELDS
        assert entry["record_id"] == record_id
        assert entry["actor"] == {"type": "api_key", "id": api.api_key_id}
        assert entry["source"] == "api"
        assert entry["request_id"] == request_ids[entry["action"]]
        assert entry["changed_at"].endswith("Z")
    # AND the times never go backwards down the list
    times = [datetime.fromisoformat(e["changed_at"].replace("Z", "+00:00")) for e in entries]
    assert times == sorted(times, reverse=True)


def test_history_pages_with_a_cursor_without_repeats_or_gaps(api: Api, lived: tuple[str, dict[str, str]]) -> None:
    # GIVEN a contact with six history entries
    path, _ = lived
    everything = api.get(f"{path}/history").json["data"]

    # WHEN the history is read two entries at a time
    paged, pages = full_history(api, path, limit=2)

    # THEN three pages hold the same entries in the same order
    assert pages == 3
    assert [e["id"] for e in paged] == [e["id"] for e in everything]


def test_history_names_the_api_key_that_made_each_change(api: Api) -> None:
    # GIVEN a contact created with the admin key and a second key with write scope
    record = api.post("/v1/contacts", {"first_name": "Keyed"}).json
    made = api.post("/v1/api-keys", {"name": "sync job", "scopes": ["write", "read"]})
    assert made.status == 201
    writer = api.with_key(made.json["key"])

    # WHEN the second key updates the contact
    assert writer.patch(f"/v1/contacts/{record['id']}", {"last_name": "Key"}).status == 200

    # THEN each entry's actor is the key that made that change
    entries = api.get(f"/v1/contacts/{record['id']}/history").json["data"]
    assert [(e["action"], e["actor"]["id"]) for e in entries] == [
        ("updated", made.json["id"]), ("created", api.api_key_id)]


def test_a_no_op_update_adds_no_history(api: Api) -> None:
    # GIVEN a contact
    record = api.post("/v1/contacts", {"first_name": "Same"}).json

    # WHEN it is patched with what it already holds
    assert api.patch(f"/v1/contacts/{record['id']}", {"first_name": "Same"}).status == 200

    # THEN its history still holds only the creation
    entries = api.get(f"/v1/contacts/{record['id']}/history").json["data"]
    assert [(e["action"], e["field"]) for e in entries] == [("created", "first_name")]


def test_company_history_records_its_changes(api: Api) -> None:
    # GIVEN a company whose domain changes
    record = api.post("/v1/companies", {"name": "Acme", "domain": "acme.com"}).json
    assert api.patch(f"/v1/companies/{record['id']}", {"domain": "www.acme.io"}).status == 200

    # WHEN its history is read
    entries = api.get(f"/v1/companies/{record['id']}/history").json["data"]

    # THEN the change shows the normalised old and new domains
    assert [(e["action"], e["field"], e["old_value"], e["new_value"]) for e in entries][0] == (
        "updated", "domain", "acme.com", "acme.io")
    assert {e["field"] for e in entries if e["action"] == "created"} == {"name", "domain"}


@pytest.mark.parametrize("path", ["/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA/history",
                                  "/v1/companies/01JAAAAAAAAAAAAAAAAAAAAAAA/history"])
def test_history_of_an_unknown_record_is_404(api: Api, path: str) -> None:
    # GIVEN no such record
    # WHEN its history is read
    reply = api.get(path)

    # THEN 404
    assert_problem(reply, 404)


def test_history_of_another_workspaces_record_is_404(api: Api, other_api: Api) -> None:
    # GIVEN a contact in another workspace
    theirs = other_api.post("/v1/contacts", {"first_name": "Theirs"}).json

    # WHEN this workspace reads its history
    reply = api.get(f"/v1/contacts/{theirs['id']}/history")

    # THEN 404
    assert_problem(reply, 404)


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "cursor=forged", "since=yesterday"])
def test_history_query_is_validated(api: Api, query: str) -> None:
    # GIVEN a contact
    record = api.post("/v1/contacts", {"first_name": "Q"}).json

    # WHEN its history is read with a bad query
    reply = api.get(f"/v1/contacts/{record['id']}/history?{query}")

    # THEN 422
    assert_problem(reply, 422)
