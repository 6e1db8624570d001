"""Contacts over HTTP: CRUD, validation, archive/restore, tenancy, and nothing half-written."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from functions.contacts.models import Contact
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.records.history import FieldHistory
from shared.context import system_scope
from tests.support.api import Api, Reply

PROBLEM_JSON = "application/problem+json"
READ_ONLY = ("id", "workspace_id", "created_at", "updated_at", "archived_at")
RECORD_FIELDS = {"id", "first_name", "last_name", "email", "phone", "job_title", "lifecycle_stage", "owner_id",
                 "company_id", "tags", "custom_fields", "merged_into_id", "ai_score", "ai_scored_at", "created_at",
                 "updated_at", "archived_at"}


@dataclass(frozen=True)
class Written:
    """What the workspace's tables hold for contacts, as plain values so two snapshots compare."""

    contacts: list[tuple[str, int]]  # (id, version)
    history: list[tuple[str, str, str, Any, Any]]  # (record_id, action, field, old, new)
    events: list[tuple[str, str, dict[str, Any]]]  # (event_type, record_id, payload)

    @property
    def contact_ids(self) -> list[str]:
        return [record_id for record_id, _ in self.contacts]

    def event_types(self, record_id: str | None = None) -> list[str]:
        return [kind for kind, rid, _ in self.events if record_id is None or rid == record_id]


NOTHING = Written([], [], [])


def written(api: Api) -> Written:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        contacts = uow.session.scalars(select(Contact).order_by(Contact.id))
        history = uow.session.scalars(
            select(FieldHistory).where(FieldHistory.object_type == "contacts").order_by(FieldHistory.id))
        events = uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.object_type == "contacts").order_by(OutboxEvent.id))
        return Written(
            contacts=[(c.id, c.version) for c in contacts],
            history=[(h.record_id, h.action, h.field, h.old_value, h.new_value) for h in history],
            events=[(e.event_type, e.record_id, e.payload) for e in events],
        )


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    body = reply.json
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["instance"] == reply.header("X-Request-Id")
    assert "Traceback" not in reply.raw.decode() and "SELECT" not in reply.raw.decode()
    return body  # type: ignore[no-any-return]


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def create_contact(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/contacts", fields)
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def create_company(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/companies", {"name": "Acme", **fields})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def list_all(api: Api, path: str = "/v1/contacts", limit: int = 50) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor = None
    sep = "&" if "?" in path else "?"
    while True:
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        reply = api.get(url)
        assert reply.status == 200, reply.raw
        records += reply.json["data"]
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return records


# ---- create ------------------------------------------------------------------------------------------
def test_create_answers_201_with_location_etag_and_a_flat_normalised_record(api: Api) -> None:
    # GIVEN a contact with a messy email
    body = {"email": "  Ann.Lee@Example.COM ", "first_name": "Ann", "last_name": "Lee", "tags": ["vip"],
            "lifecycle_stage": "lead", "job_title": "CTO", "phone": "+1 555 0100"}

    # WHEN it is created
    reply = api.post("/v1/contacts", body)

    # THEN the answer is 201, says where the record lives, and carries its first version
    assert reply.status == 201
    record = reply.json
    assert reply.header("Location") == f"/v1/contacts/{record['id']}"
    assert reply.header("ETag") == '"v1"'
    assert reply.header("Content-Type") == "application/json"
    # AND the record is flat, with the email trimmed and lower-cased and the timestamps set
    assert set(record) == RECORD_FIELDS
    assert record["email"] == "ann.lee@example.com"
    assert record["first_name"] == "Ann" and record["lifecycle_stage"] == "lead" and record["tags"] == ["vip"]
    assert record["created_at"] == record["updated_at"] and record["created_at"].endswith("Z")
    assert record["archived_at"] is None
    # AND reading it back answers the same record
    again = api.get(reply.header("Location") or "")
    assert again.status == 200 and again.json == record and again.header("ETag") == '"v1"'


def test_create_writes_one_created_event_and_history_for_each_set_field(api: Api) -> None:
    # GIVEN an empty workspace
    # WHEN a contact is created with three fields
    record = create_contact(api, email="bo@example.com", first_name="Bo", tags=["a"])

    # THEN exactly one contact row, one contact.created event and one history row per set field exist
    state = written(api)
    assert state.contact_ids == [record["id"]]
    assert state.event_types() == ["contact.created"]
    _, event_record_id, payload = state.events[0]
    assert event_record_id == record["id"] and payload["data"]["object"] == record
    assert sorted(state.history) == sorted([
        (record["id"], "created", "email", None, "bo@example.com"), (record["id"], "created", "first_name", None, "Bo"),
        (record["id"], "created", "tags", None, ["a"]),
    ])


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@b.c", "lifecycle_stage": "prospect"}, "lifecycle_stage"),
    ({"first_name": ""}, "first_name"),
    ({"first_name": "x" * 101}, "first_name"),
    ({"first_name": "A", "tags": "vip"}, "tags"),
    ({"first_name": "A", "phone": "call me"}, "phone"),
])
def test_create_refuses_invalid_fields_with_422_naming_them(api: Api, body: dict[str, Any], field: str) -> None:
    # GIVEN a body with one invalid field
    # WHEN it is posted
    reply = api.post("/v1/contacts", body)

    # THEN it is a 422 problem that names the field, and nothing is written
    problem = assert_problem(reply, 422)
    assert field in error_fields(problem)
    assert written(api) == NOTHING


def test_create_needs_an_email_or_a_name(api: Api) -> None:
    # GIVEN a contact with only a phone number
    # WHEN it is posted
    reply = api.post("/v1/contacts", {"phone": "+1 555 0100"})

    # THEN it is refused
    assert_problem(reply, 422)
    assert written(api).contact_ids == []


def test_lifecycle_stage_accepts_every_documented_stage(api: Api) -> None:
    # GIVEN every documented stage
    stages = ["subscriber", "lead", "qualified", "opportunity", "customer", "other"]

    # WHEN a contact is created in each
    created = [create_contact(api, first_name=stage, lifecycle_stage=stage) for stage in stages]

    # THEN each keeps its stage
    assert [c["lifecycle_stage"] for c in created] == stages


def test_unknown_fields_are_422_naming_every_one(api: Api) -> None:
    # GIVEN a body with two fields contacts do not have
    body = {"email": "c@example.com", "nickname": "cee", "shoe_size": 42}

    # WHEN it is posted
    reply = api.post("/v1/contacts", body)

    # THEN both are named and nothing is written
    problem = assert_problem(reply, 422)
    assert error_fields(problem) == {"nickname", "shoe_size"}
    assert written(api).contact_ids == []


@pytest.mark.parametrize("field", READ_ONLY)
def test_read_only_fields_are_422_on_create_and_update(api: Api, field: str) -> None:
    # GIVEN an existing contact
    record = create_contact(api, email="ro@example.com")

    # WHEN a create and an update try to write a read-only field
    created = api.post("/v1/contacts", {"email": "ro2@example.com", field: "01JAAAAAAAAAAAAAAAAAAAAAAA"})
    updated = api.patch(f"/v1/contacts/{record['id']}", {"first_name": "New", field: "2020-01-01T00:00:00Z"})

    # THEN both are 422 with code read_only on that field, and nothing changes
    for reply in (created, updated):
        problem = assert_problem(reply, 422)
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [(field, "read_only")]
    assert written(api).contact_ids == [record["id"]]
    assert api.get(f"/v1/contacts/{record['id']}").json == record


def test_malformed_json_is_400(api: Api) -> None:
    # GIVEN a body that is not JSON
    # WHEN it is posted
    reply = api.post("/v1/contacts", raw='{"email": "x@y.com",')

    # THEN it is a 400 problem
    problem = assert_problem(reply, 400)
    assert "malformed" in problem["type"]
    assert written(api).contact_ids == []


@pytest.mark.parametrize("raw", ['[{"email": "x@y.com"}]', '"x@y.com"', "42", "null"])
def test_a_body_that_is_not_an_object_is_422(api: Api, raw: str) -> None:
    # GIVEN valid JSON that is not an object
    # WHEN it is posted
    reply = api.post("/v1/contacts", raw=raw)

    # THEN it is a 422 problem
    assert_problem(reply, 422)
    assert written(api).contact_ids == []


def test_a_non_json_content_type_is_415_problem(api: Api) -> None:
    # GIVEN a JSON body sent as text/plain
    # WHEN it is posted
    reply = api.post("/v1/contacts", raw='{"email": "x@y.com"}', headers={"Content-Type": "text/plain"})

    # THEN it is a 415 problem and nothing is written
    assert_problem(reply, 415)
    assert written(api).contact_ids == []


@pytest.mark.parametrize("path", ["/v1/contacts?sort=name", "/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA?expand=company",
                                  "/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA/history?archived=1"])
def test_unknown_query_parameters_are_422(api: Api, path: str) -> None:
    # GIVEN a query parameter no route declares
    # WHEN it is sent
    reply = api.get(path)

    # THEN the parameter is named in a 422
    problem = assert_problem(reply, 422)
    assert any(f.startswith("query.") for f in error_fields(problem))


# ---- get / list --------------------------------------------------------------------------------------
def test_get_unknown_id_is_404_problem(api: Api) -> None:
    # GIVEN no contact with that id
    # WHEN it is read
    reply = api.get("/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA")

    # THEN 404
    assert_problem(reply, 404)


def test_list_pages_with_a_cursor_and_ends_with_null(api: Api) -> None:
    # GIVEN five contacts
    ids = {create_contact(api, first_name=f"P{i}")["id"] for i in range(5)}

    # WHEN they are listed two at a time
    first = api.get("/v1/contacts?limit=2")
    pages = list_all(api, limit=2)

    # THEN the first page has two and a cursor; paging reaches every contact once, newest first
    assert len(first.json["data"]) == 2 and first.json["next_cursor"]
    assert [r["id"] for r in pages] == sorted(ids, reverse=True)


def test_list_default_page_is_50(api: Api) -> None:
    # GIVEN 51 contacts
    reply = api.post("/v1/contacts/batch/create", {"inputs": [{"first_name": f"N{i}"} for i in range(51)]})
    assert reply.status == 200

    # WHEN the list is read without a limit
    page = api.get("/v1/contacts").json

    # THEN it holds 50 and says there is more; the next page holds the last one
    assert len(page["data"]) == 50 and page["next_cursor"]
    rest = api.get(f"/v1/contacts?cursor={page['next_cursor']}").json
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten", ""])
def test_list_limit_outside_1_to_200_is_422(api: Api, limit: str) -> None:
    # GIVEN a bad limit
    # WHEN the list is read
    reply = api.get(f"/v1/contacts?limit={limit}")

    # THEN 422 names query.limit
    assert "query.limit" in error_fields(assert_problem(reply, 422))


@pytest.mark.parametrize("limit", [1, 200])
def test_list_limit_bounds_are_accepted(api: Api, limit: int) -> None:
    # GIVEN two contacts
    create_contact(api, first_name="A")
    create_contact(api, first_name="B")

    # WHEN the list is read at a bound
    reply = api.get(f"/v1/contacts?limit={limit}")

    # THEN it answers at most `limit` records
    assert reply.status == 200 and len(reply.json["data"]) == min(limit, 2)


def test_a_forged_cursor_is_422(api: Api) -> None:
    # GIVEN a cursor the API did not issue
    # WHEN it is used
    reply = api.get("/v1/contacts?cursor=eyJrIjpbXX0")

    # THEN 422 names the cursor
    assert "cursor" in error_fields(assert_problem(reply, 422))


def test_list_pages_stay_stable_while_rows_are_added_and_archived(api: Api) -> None:
    # GIVEN seven contacts, and the first page of three read
    original = [create_contact(api, first_name=f"S{i}")["id"] for i in range(7)]
    first = api.get("/v1/contacts?limit=3").json
    seen = [r["id"] for r in first["data"]]

    # WHEN contacts are added and one unseen plus one seen contact are archived before the next pages
    added = [create_contact(api, first_name=f"New{i}")["id"] for i in range(2)]
    unseen = [i for i in original if i not in seen]
    archived_unseen, archived_seen = unseen[0], seen[0]
    assert api.delete(f"/v1/contacts/{archived_unseen}").status == 204
    assert api.delete(f"/v1/contacts/{archived_seen}").status == 204
    cursor = first["next_cursor"]
    while cursor:
        page = api.get(f"/v1/contacts?limit=3&cursor={cursor}").json
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]

    # THEN no contact appears twice and every contact that existed throughout appears
    assert len(seen) == len(set(seen))
    throughout = set(original) - {archived_unseen, archived_seen}
    assert throughout <= set(seen)
    assert archived_unseen not in seen
    assert set(seen) <= set(original) | set(added)


# ---- update ------------------------------------------------------------------------------------------
def test_update_changes_only_the_given_fields_and_bumps_the_version(api: Api) -> None:
    # GIVEN a contact that has been read (so it is cached)
    record = create_contact(api, email="up@example.com", first_name="Up", job_title="Dev", tags=["x"])
    assert api.get(f"/v1/contacts/{record['id']}").status == 200

    # WHEN two fields are patched
    reply = api.patch(f"/v1/contacts/{record['id']}", {"job_title": "CTO", "email": " UP2@Example.com"})

    # THEN only they change, the version moves on, and the next read sees the change
    assert reply.status == 200 and reply.header("ETag") == '"v2"'
    updated = reply.json
    assert updated["job_title"] == "CTO" and updated["email"] == "up2@example.com"
    assert {k: v for k, v in updated.items() if k not in ("job_title", "email", "updated_at")} == {
        k: v for k, v in record.items() if k not in ("job_title", "email", "updated_at")}
    assert updated["updated_at"] > record["updated_at"]
    read = api.get(f"/v1/contacts/{record['id']}")
    assert read.json == updated and read.header("ETag") == '"v2"'
    # AND one contact.updated event lists exactly the changes, with history rows to match
    state = written(api)
    assert state.event_types(record["id"]) == ["contact.created", "contact.updated"]
    assert state.events[-1][2]["data"]["changes"] == {
        "job_title": {"old": "Dev", "new": "CTO"}, "email": {"old": "up@example.com", "new": "up2@example.com"}}
    assert {(field, old, new) for _, action, field, old, new in state.history if action == "updated"} == {
        ("job_title", "Dev", "CTO"), ("email", "up@example.com", "up2@example.com")}


def test_update_can_clear_a_field_with_null(api: Api) -> None:
    # GIVEN a contact with a job title
    record = create_contact(api, first_name="Cl", job_title="Dev")

    # WHEN the job title is set to null
    reply = api.patch(f"/v1/contacts/{record['id']}", {"job_title": None})

    # THEN it is cleared
    assert reply.status == 200 and reply.json["job_title"] is None


def test_a_no_op_patch_keeps_the_version_and_writes_nothing(api: Api) -> None:
    # GIVEN a contact
    record = create_contact(api, email="same@example.com", first_name="Same")
    before = written(api)

    # WHEN it is patched with the values it already has
    reply = api.patch(f"/v1/contacts/{record['id']}", {"first_name": "Same", "email": "SAME@example.com"})

    # THEN it answers the same record at the same version, and no history or event is written
    assert reply.status == 200 and reply.header("ETag") == '"v1"'
    assert reply.json == record
    after = written(api)
    assert len(after.history) == len(before.history) and after.event_types() == before.event_types()


def test_update_with_invalid_fields_is_422_and_changes_nothing(api: Api) -> None:
    # GIVEN a contact
    record = create_contact(api, email="keep@example.com")
    before = written(api)

    # WHEN a patch mixes a valid field with an invalid one
    reply = api.patch(f"/v1/contacts/{record['id']}", {"first_name": "Kept", "lifecycle_stage": "vip"})

    # THEN 422 names the bad field; the record, its history and the outbox are untouched
    assert "lifecycle_stage" in error_fields(assert_problem(reply, 422))
    assert api.get(f"/v1/contacts/{record['id']}").header("ETag") == '"v1"'
    after = written(api)
    assert len(after.history) == len(before.history) and after.event_types() == before.event_types()


def test_update_of_an_unknown_contact_is_404(api: Api) -> None:
    # GIVEN no such contact
    # WHEN it is patched
    reply = api.patch("/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA", {"first_name": "X"})

    # THEN 404
    assert_problem(reply, 404)


# ---- unique email --------------------------------------------------------------------------------------
def test_duplicate_email_is_409_naming_the_existing_contact_and_writes_nothing(api: Api) -> None:
    # GIVEN a contact with an email
    first = create_contact(api, email="dup@example.com")
    before = written(api)

    # WHEN another contact is created with the same email, spelled differently
    reply = api.post("/v1/contacts", {"email": " DUP@Example.com", "first_name": "Second"})

    # THEN 409 names the existing contact, and nothing of the second is written
    problem = assert_problem(reply, 409)
    assert problem["existing_id"] == first["id"]
    assert written(api) == before


def test_updating_to_a_taken_email_is_409(api: Api) -> None:
    # GIVEN two contacts
    first = create_contact(api, email="one@example.com")
    second = create_contact(api, email="two@example.com")

    # WHEN the second takes the first one's email
    reply = api.patch(f"/v1/contacts/{second['id']}", {"email": "one@example.com"})

    # THEN 409 names the first, and the second keeps its email
    assert assert_problem(reply, 409)["existing_id"] == first["id"]
    assert api.get(f"/v1/contacts/{second['id']}").json["email"] == "two@example.com"


def test_the_same_email_may_exist_in_another_workspace(api: Api, other_api: Api) -> None:
    # GIVEN a contact in another workspace
    create_contact(other_api, email="shared@example.com")

    # WHEN this workspace creates one with the same email
    reply = api.post("/v1/contacts", {"email": "shared@example.com"})

    # THEN it is allowed
    assert reply.status == 201


def test_an_archived_contact_still_holds_its_email(api: Api) -> None:
    # GIVEN an archived contact
    first = create_contact(api, email="gone@example.com")
    assert api.delete(f"/v1/contacts/{first['id']}").status == 204

    # WHEN its email is used again
    reply = api.post("/v1/contacts", {"email": "gone@example.com"})

    # THEN 409 names the archived contact (restore it instead)
    assert assert_problem(reply, 409)["existing_id"] == first["id"]


# ---- references --------------------------------------------------------------------------------------
def test_company_id_must_name_a_live_company_of_this_workspace(api: Api, other_api: Api) -> None:
    # GIVEN a company here, an archived one here, and one in another workspace
    live = create_company(api, name="Live")
    archived = create_company(api, name="Gone")
    assert api.delete(f"/v1/companies/{archived['id']}").status == 204
    foreign = create_company(other_api, name="Theirs")

    # WHEN contacts name each of them (and a made-up id)
    ok = api.post("/v1/contacts", {"first_name": "Ok", "company_id": live["id"]})
    refused = [api.post("/v1/contacts", {"first_name": "No", "company_id": company_id})
               for company_id in (archived["id"], foreign["id"], "01JAAAAAAAAAAAAAAAAAAAAAAA")]

    # THEN only the live company of this workspace is accepted; the others are 422 on company_id
    assert ok.status == 201 and ok.json["company_id"] == live["id"]
    for reply in refused:
        assert error_fields(assert_problem(reply, 422)) == {"company_id"}
    assert written(api).contact_ids == [ok.json["id"]]


def test_company_id_is_checked_on_update_too(api: Api, other_api: Api) -> None:
    # GIVEN a contact and another workspace's company
    record = create_contact(api, first_name="Ref")
    foreign = create_company(other_api, name="Theirs")

    # WHEN the contact is moved to it
    reply = api.patch(f"/v1/contacts/{record['id']}", {"company_id": foreign["id"]})

    # THEN 422, and the contact is unchanged
    assert error_fields(assert_problem(reply, 422)) == {"company_id"}
    assert api.get(f"/v1/contacts/{record['id']}").json["company_id"] is None


def test_owner_id_must_be_a_member_of_this_workspace(api: Api, other_api: Api) -> None:
    # GIVEN this workspace's owner and another workspace's owner
    # WHEN contacts are owned by each
    ok = api.post("/v1/contacts", {"first_name": "Mine", "owner_id": api.owner_user_id})
    foreign = api.post("/v1/contacts", {"first_name": "Theirs", "owner_id": other_api.owner_user_id})
    unknown = api.post("/v1/contacts", {"first_name": "Nobody", "owner_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"})

    # THEN only the member is accepted
    assert ok.status == 201 and ok.json["owner_id"] == api.owner_user_id
    assert error_fields(assert_problem(foreign, 422)) == {"owner_id"}
    assert error_fields(assert_problem(unknown, 422)) == {"owner_id"}


def test_a_failed_create_leaves_no_row_history_or_event(api: Api) -> None:
    # GIVEN an empty workspace
    # WHEN a create fails its reference check after validation passed
    reply = api.post("/v1/contacts", {"email": "half@example.com", "company_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"})

    # THEN nothing at all is written
    assert_problem(reply, 422)
    assert written(api) == NOTHING


# ---- archive / restore -------------------------------------------------------------------------------
def test_archive_hides_the_contact_unless_asked_and_restore_brings_it_back(api: Api) -> None:
    # GIVEN a contact that has been read (so it is cached)
    record = create_contact(api, email="arc@example.com", first_name="Archie")
    assert api.get(f"/v1/contacts/{record['id']}").status == 200

    # WHEN it is archived
    reply = api.delete(f"/v1/contacts/{record['id']}")

    # THEN 204 with no body; get, list and search no longer show it unless include_archived=true
    assert reply.status == 204 and reply.raw == b""
    assert_problem(api.get(f"/v1/contacts/{record['id']}"), 404)
    shown = api.get(f"/v1/contacts/{record['id']}?include_archived=true")
    assert shown.status == 200 and shown.json["archived_at"] is not None
    assert record["id"] not in [r["id"] for r in list_all(api)]
    assert record["id"] in [r["id"] for r in list_all(api, "/v1/contacts?include_archived=true")]
    search = {"query": "archie"}
    assert api.post("/v1/contacts/search", search).json["data"] == []
    assert [r["id"] for r in api.post("/v1/contacts/search", {**search, "include_archived": True}).json["data"]] \
        == [record["id"]]
    # AND an archived contact cannot be patched
    assert_problem(api.patch(f"/v1/contacts/{record['id']}", {"first_name": "X"}), 404)

    # WHEN it is restored
    restored = api.post(f"/v1/contacts/{record['id']}/restore")

    # THEN it is visible again, unarchived
    assert restored.status == 200 and restored.json["archived_at"] is None
    assert restored.header("ETag") == '"v3"'
    assert api.get(f"/v1/contacts/{record['id']}").json == restored.json


def test_archive_and_restore_write_their_events_and_history(api: Api) -> None:
    # GIVEN a contact
    record = create_contact(api, first_name="Ev")

    # WHEN it is archived twice and restored twice
    statuses = [api.delete(f"/v1/contacts/{record['id']}").status for _ in range(2)]
    restores = [api.post(f"/v1/contacts/{record['id']}/restore").status for _ in range(2)]

    # THEN archiving twice is still 204 and restoring twice 200, but each change is recorded once
    assert statuses == [204, 204] and restores == [200, 200]
    state = written(api)
    assert state.event_types(record["id"]) == ["contact.created", "contact.archived", "contact.restored"]
    archived_event = state.events[1][2]["data"]
    assert archived_event["changes"]["archived_at"]["old"] is None
    assert archived_event["changes"]["archived_at"]["new"] is not None
    assert [(action, field) for _, action, field, _, _ in state.history if action in ("archived", "restored")] == [
        ("archived", "archived_at"), ("restored", "archived_at")]


def test_archive_or_restore_of_an_unknown_contact_is_404(api: Api) -> None:
    # GIVEN no such contact
    # WHEN it is archived or restored
    replies = [api.delete("/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA"),
               api.post("/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA/restore")]

    # THEN both are 404
    for reply in replies:
        assert_problem(reply, 404)


# ---- tenancy -----------------------------------------------------------------------------------------
def test_another_workspace_cannot_see_or_change_a_contact(api: Api, other_api: Api) -> None:
    # GIVEN a contact in the other workspace
    theirs = create_contact(other_api, email="secret@example.com", first_name="Secret")
    path = f"/v1/contacts/{theirs['id']}"
    before = written(other_api)

    # WHEN this workspace tries every route on it
    replies = [
        api.get(path), api.get(f"{path}?include_archived=true"), api.patch(path, {"first_name": "Pwned"}),
        api.delete(path), api.post(f"{path}/restore"), api.get(f"{path}/history"),
    ]

    # THEN each is 404, and the contact never shows in list or search
    for reply in replies:
        assert_problem(reply, 404)
    assert list_all(api, "/v1/contacts?include_archived=true") == []
    for search in ({"query": "secret"}, {"include_archived": True},
                   {"filter_groups": [{"filters": [{"property": "id", "operator": "EQ", "value": theirs["id"]}]}]}):
        assert api.post("/v1/contacts/search", search).json["data"] == []
    # AND the other workspace's contact is untouched
    assert other_api.get(path).json == theirs
    assert written(other_api) == before
