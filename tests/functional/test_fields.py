"""Custom field definitions through the API: CRUD, admin-only writes, immutable key and type,
required/unique/options edits guarded by the records, archive and restore, events, tenancy."""
from __future__ import annotations

from typing import Any

import pytest

from layers.records.custom import custom_object
from tests.support.api import Api, Reply
from tests.support.custom_fields import define, field_events, field_tables

PROBLEM_JSON = "application/problem+json"
FIELD_KEYS = {"id", "object_type", "key", "label", "type", "required", "unique", "options", "description",
              "created_at", "updated_at", "archived_at"}


def problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    return reply.json  # type: ignore[no-any-return]


def error_fields(reply: Reply, status: int = 422) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in problem(reply, status)["errors"]]


def key_with(api: Api, *scopes: str) -> Api:
    made = api.post("/v1/api-keys", {"name": "limited", "scopes": list(scopes)})
    assert made.status == 201, made.raw
    return api.with_key(made.json["key"])


# ---- create, read, list ---------------------------------------------------------------------------
def test_create_answers_the_definition_with_etag_location_and_an_event(api: Api) -> None:
    # GIVEN an admin
    # WHEN they define a select field
    reply = api.post("/v1/fields", {"object_type": "contacts", "key": "tier", "label": "Tier",
                                    "type": "single_select", "options": [" Gold", "Silver"],
                                    "description": "Customer tier"})

    # THEN 201 with the definition (options trimmed), its ETag and Location
    assert reply.status == 201, reply.raw
    body = reply.json
    assert set(body) == FIELD_KEYS
    assert (body["key"], body["type"], body["options"], body["required"], body["unique"]) == \
        ("tier", "single_select", ["Gold", "Silver"], False, False)
    assert reply.header("ETag") == '"v1"'
    assert reply.header("Location") == f"/v1/fields/{body['id']}"
    # ... it reads back the same, and a field.created event went out with it
    got = api.get(f"/v1/fields/{body['id']}")
    assert got.status == 200 and got.json == body and got.header("ETag") == '"v1"'
    events = field_events(api)
    assert [e["type"] for e in events] == ["field.created"]
    assert events[0]["data"]["object"] == body


def test_list_filters_by_object_pages_and_hides_archived(api: Api) -> None:
    # GIVEN three contact fields (one archived) and one company field
    first = define(api, "contacts", "a_one", "text")
    second = define(api, "contacts", "a_two", "number")
    gone = define(api, "contacts", "a_gone", "boolean")
    company = define(api, "companies", "a_one", "text")  # the same key on another object is fine
    assert api.delete(f"/v1/fields/{gone['id']}").status == 204

    # WHEN listing contacts' fields two at a time
    page1 = api.get("/v1/fields?object=contacts&limit=1")
    page2 = api.get(f"/v1/fields?object=contacts&limit=1&cursor={page1.json['next_cursor']}")

    # THEN pages walk the live contact fields in creation order
    assert [f["id"] for f in page1.json["data"]] == [first["id"]]
    assert [f["id"] for f in page2.json["data"]] == [second["id"]] and page2.json["next_cursor"] is None
    # ... the unfiltered list has both objects; archived ones only when asked
    assert [f["id"] for f in api.get("/v1/fields").json["data"]] == [first["id"], second["id"], company["id"]]
    archived = api.get("/v1/fields?object=contacts&include_archived=true").json["data"]
    assert [f["id"] for f in archived] == [first["id"], second["id"], gone["id"]]
    # ... and a cursor only pages the query it came from
    assert error_fields(api.get(f"/v1/fields?object=companies&cursor={page1.json['next_cursor']}")) == \
        [("cursor", "invalid")]


@pytest.mark.parametrize("query", ["object=leads", "limit=0", "limit=201", "colour=red", "include_archived=maybe"])
def test_list_refuses_bad_query_parameters(api: Api, query: str) -> None:
    # GIVEN a bad query string WHEN listing THEN 422
    problem(api.get(f"/v1/fields?{query}"), 422)


def test_get_of_an_unknown_id_is_404(api: Api) -> None:
    # GIVEN no such field WHEN read, edited, archived or restored THEN 404
    path = "/v1/fields/01JAAAAAAAAAAAAAAAAAAAAAAA"
    problem(api.get(path), 404)
    problem(api.patch(path, {"label": "X"}), 404)
    problem(api.delete(path), 404)
    problem(api.post(f"{path}/restore"), 404)


# ---- who may write ----------------------------------------------------------------------------------
def test_only_admins_write_definitions_and_readers_list_them(api: Api) -> None:
    # GIVEN a field, a read+write (not admin) key and a read-only key
    field = define(api, "contacts", "tier", "text")
    writer, reader = key_with(api, "read", "write"), key_with(api, "read")
    path = f"/v1/fields/{field['id']}"

    # WHEN the non-admins try to change definitions THEN 403, and nothing changed
    before = field_tables(api)
    for client in (writer, reader):
        problem(client.post("/v1/fields", {"object_type": "contacts", "key": "x", "label": "X", "type": "text"}), 403)
        problem(client.patch(path, {"label": "Renamed"}), 403)
        problem(client.delete(path), 403)
        problem(client.post(f"{path}/restore"), 403)
    assert field_tables(api) == before

    # ... but they may list and read them
    assert [f["id"] for f in reader.get("/v1/fields").json["data"]] == [field["id"]]
    assert writer.get(path).status == 200


# ---- what a definition may say ----------------------------------------------------------------------
@pytest.mark.parametrize(("body", "at"), [
    ({"key": "Tier"}, "key"),  # upper case
    ({"key": "1tier"}, "key"),  # starts with a digit
    ({"key": "tier-level"}, "key"),
    ({"key": "t" * 64}, "key"),  # 64 characters
    ({"key": ""}, "key"),
    ({"label": ""}, "label"),
    ({"type": "geo_point"}, "type"),
    ({"object_type": "leads"}, "object_type"),
    ({"required": "yes"}, "required"),
    ({"unique": 1}, "unique"),
    ({"options": ["A", "a"]}, "options"),
    ({"colour": "red"}, "colour"),
])
def test_create_refuses_malformed_definitions(api: Api, body: dict[str, Any], at: str) -> None:
    # GIVEN a definition with one bad part WHEN created THEN 422 names that part, and nothing is written
    full = {"object_type": "contacts", "key": "tier", "label": "Tier", "type": "text", **body}
    assert at in [f for f, _ in error_fields(api.post("/v1/fields", full))]
    assert field_tables(api).definitions == []


@pytest.mark.parametrize(("field_type", "extra", "at", "code"), [
    ("long_text", {"unique": True}, "unique", "not_allowed"),
    ("boolean", {"unique": True}, "unique", "not_allowed"),
    ("date", {"unique": True}, "unique", "not_allowed"),
    ("datetime", {"unique": True}, "unique", "not_allowed"),
    ("currency", {"unique": True}, "unique", "not_allowed"),
    ("multi_select", {"unique": True, "options": ["A"]}, "unique", "not_allowed"),
    ("single_select", {}, "options", "missing"),
    ("multi_select", {"options": []}, "options", "missing"),
    ("number", {"options": ["1"]}, "options", "not_allowed"),
])
def test_create_refuses_shapes_the_type_does_not_take(
    api: Api, field_type: str, extra: dict[str, Any], at: str, code: str
) -> None:
    # GIVEN unique on a type that cannot be unique, or options where none (or some) belong
    body = {"object_type": "contacts", "key": "f", "label": "F", "type": field_type, **extra}
    # WHEN created THEN 422 at that part
    assert error_fields(api.post("/v1/fields", body)) == [(at, code)]


@pytest.mark.parametrize(("object_type", "key"), [
    ("contacts", "email"), ("contacts", "first_name"), ("contacts", "owner_id"), ("contacts", "custom_fields"),
    ("contacts", "custom"), ("contacts", "created_at"), ("companies", "domain"), ("companies", "employee_count"),
])
def test_keys_may_not_shadow_built_in_properties(api: Api, object_type: str, key: str) -> None:
    # GIVEN the name of a built-in property WHEN used as a custom key THEN 422 "reserved"
    body = {"object_type": object_type, "key": key, "label": "X", "type": "text"}
    assert error_fields(api.post("/v1/fields", body)) == [("key", "reserved")]


def test_a_key_is_unique_per_object_type_archived_ones_included(api: Api) -> None:
    # GIVEN a contact field, archived
    field = define(api, "contacts", "tier", "text")
    assert api.delete(f"/v1/fields/{field['id']}").status == 204
    before = field_tables(api)

    # WHEN the same key is defined again on contacts
    reply = api.post("/v1/fields", {"object_type": "contacts", "key": "tier", "label": "Tier", "type": "number"})

    # THEN 409 names the existing (archived) definition, and nothing is written
    assert problem(reply, 409)["existing_id"] == field["id"]
    assert field_tables(api) == before


def test_deals_take_custom_fields_once_that_capability_registers_them(api: Api) -> None:
    # GIVEN a deals field WHEN defined
    reply = api.post("/v1/fields", {"object_type": "deals", "key": "tier", "label": "Tier", "type": "single_select",
                                    "options": ["Gold"], "required": False})
    # THEN it is created when deals carry custom fields in this build (the app is imported by now) …
    if custom_object("deals") is None:
        assert error_fields(reply) == [("object_type", "enum")]
        return
    assert reply.status == 201, reply.raw
    # … and deals validate and store its values like contacts (search is the same machinery, tested there)
    made = api.post("/v1/deals", {"name": "Big", "amount": "100.00", "currency": "USD",
                                  "custom_fields": {"tier": "gold"}})
    assert made.status == 201, made.raw
    assert made.json["custom_fields"] == {"tier": "Gold"}
    bad = api.post("/v1/deals", {"name": "Bad", "amount": "1.00", "currency": "USD", "custom_fields": {"tier": "x"}})
    assert error_fields(bad) == [("custom_fields.tier", "invalid")]


# ---- edits ------------------------------------------------------------------------------------------
def test_edit_label_and_description_bumps_the_version_and_emits_the_changes(api: Api) -> None:
    # GIVEN a field
    field = define(api, "contacts", "tier", "text", description="old")
    path = f"/v1/fields/{field['id']}"

    # WHEN its label changes and description is cleared, with the right If-Match
    reply = api.patch(path, {"label": "Customer tier", "description": None}, headers={"If-Match": '"v1"'})

    # THEN 200 with version 2, and a field.updated event listing the changes
    assert reply.status == 200, reply.raw
    assert (reply.json["label"], reply.json["description"], reply.header("ETag")) == ("Customer tier", None, '"v2"')
    updated = field_events(api)[-1]
    assert updated["type"] == "field.updated"
    assert updated["data"]["changes"] == {"label": {"old": "Tier", "new": "Customer tier"},
                                          "description": {"old": "old", "new": None}}
    # ... a stale If-Match is 412; an edit that changes nothing is a no-op
    problem(api.patch(path, {"label": "Stale"}, headers={"If-Match": '"v1"'}), 412)
    same = api.patch(path, {"label": "Customer tier"})
    assert same.status == 200 and same.header("ETag") == '"v2"'


@pytest.mark.parametrize(("change", "at"), [
    ({"key": "level"}, "key"), ({"type": "number"}, "type"), ({"object_type": "companies"}, "object_type"),
])
def test_key_type_and_object_are_immutable(api: Api, change: dict[str, Any], at: str) -> None:
    # GIVEN a field
    field = define(api, "contacts", "tier", "text")
    path = f"/v1/fields/{field['id']}"
    # WHEN its key, type or object changes THEN 422 "immutable", and the field is as it was
    assert error_fields(api.patch(path, change)) == [(at, "immutable")]
    assert api.get(path).json == field
    # ... but sending the current value back is fine
    echoed = api.patch(path, {"key": "tier", "type": "text", "object_type": "contacts", "label": "Tier 2"})
    assert echoed.status == 200 and echoed.json["label"] == "Tier 2"


@pytest.mark.parametrize("change", [{"label": None}, {"required": None}, {"options": None}, {"unique": "yes"}])
def test_edit_refuses_nulls_and_non_booleans(api: Api, change: dict[str, Any]) -> None:
    # GIVEN a field WHEN an edit nulls a part that cannot be empty THEN 422
    field = define(api, "contacts", "tier", "single_select", options=["A"])
    problem(api.patch(f"/v1/fields/{field['id']}", change), 422)


def test_making_a_field_unique_on_a_type_that_cannot_be_is_422(api: Api) -> None:
    # GIVEN a boolean field WHEN made unique THEN 422
    field = define(api, "contacts", "vip", "boolean")
    assert error_fields(api.patch(f"/v1/fields/{field['id']}", {"unique": True})) == [("unique", "not_allowed")]


def test_making_a_field_required_is_refused_while_records_lack_it(api: Api) -> None:
    # GIVEN a field, one contact with a value and two without (one of them archived)
    field = define(api, "contacts", "region", "text")
    path = f"/v1/fields/{field['id']}"
    api.post("/v1/contacts", {"first_name": "Has", "custom_fields": {"region": "EU"}})
    lacking = api.post("/v1/contacts", {"first_name": "Lacks"}).json
    archived = api.post("/v1/contacts", {"first_name": "Archived"}).json
    assert api.delete(f"/v1/contacts/{archived['id']}").status == 204
    before = field_tables(api)

    # WHEN it is made required
    reply = api.patch(path, {"required": True})

    # THEN 409 says how many live records are in the way, and nothing changed
    body = problem(reply, 409)
    assert (body["count"], body["errors"][0]["field"]) == (1, "required")
    assert field_tables(api) == before

    # ... once that record has a value, the field becomes required
    assert api.patch(f"/v1/contacts/{lacking['id']}", {"custom_fields": {"region": "US"}}).status == 200
    assert api.patch(path, {"required": True}).json["required"] is True


def test_a_new_required_field_needs_an_object_without_records(api: Api) -> None:
    # GIVEN a company WHEN a required company field is defined THEN 409 (that company would lack it)
    api.post("/v1/companies", {"name": "Acme"})
    body = problem(api.post("/v1/fields", {"object_type": "companies", "key": "region", "label": "Region",
                                           "type": "text", "required": True}), 409)
    assert body["count"] == 1
    # ... on contacts (none yet) it is created
    assert define(api, "contacts", "region", "text", required=True)["required"] is True


def test_making_a_field_unique_is_refused_while_records_share_a_value(api: Api) -> None:
    # GIVEN a text field whose value two contacts share (ignoring case), and a third with another value
    field = define(api, "contacts", "code", "text")
    path = f"/v1/fields/{field['id']}"
    first = api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"code": "ABC"}}).json
    second = api.post("/v1/contacts", {"first_name": "B", "custom_fields": {"code": "abc"}}).json
    api.post("/v1/contacts", {"first_name": "C", "custom_fields": {"code": "XYZ"}})

    # WHEN it is made unique THEN 409 says two records share a value
    body = problem(api.patch(path, {"unique": True}), 409)
    assert (body["count"], body["errors"][0]["field"]) == (2, "unique")
    assert field_tables(api).claims == []

    # ... once they differ, it becomes unique and every existing value is claimed
    assert api.patch(f"/v1/contacts/{second['id']}", {"custom_fields": {"code": "DEF"}}).status == 200
    assert api.patch(path, {"unique": True}).json["unique"] is True
    assert len(field_tables(api).claims) == 3
    # ... so a new write of an existing value is 409 naming the holder
    clash = api.post("/v1/contacts", {"first_name": "D", "custom_fields": {"code": "abc "}})
    assert problem(clash, 409)["existing_id"] == first["id"]

    # ... and making it not unique again releases the values
    assert api.patch(path, {"unique": False}).status == 200
    assert field_tables(api).claims == []
    assert api.post("/v1/contacts", {"first_name": "D", "custom_fields": {"code": "ABC"}}).status == 201


def test_numbers_are_unique_by_amount(api: Api) -> None:
    # GIVEN two contacts holding 1 and 1.0 in a number field
    field = define(api, "contacts", "badge", "number")
    api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"badge": 1}})
    api.post("/v1/contacts", {"first_name": "B", "custom_fields": {"badge": 1.0}})
    # WHEN it is made unique THEN 409: the same amount
    assert problem(api.patch(f"/v1/fields/{field['id']}", {"unique": True}), 409)["count"] == 2


def test_options_can_be_added_reordered_and_removed_while_unused(api: Api) -> None:
    # GIVEN a select field whose "Gold" option a contact uses
    field = define(api, "contacts", "tier", "single_select", options=["Gold", "Silver", "Bronze"])
    path = f"/v1/fields/{field['id']}"
    api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"tier": "Gold"}})

    # WHEN options are added and reordered THEN fine
    reply = api.patch(path, {"options": ["Platinum", "Gold", "Bronze", "Silver"]})
    assert reply.status == 200 and reply.json["options"] == ["Platinum", "Gold", "Bronze", "Silver"]
    # ... an unused option can be removed
    assert api.patch(path, {"options": ["Platinum", "Gold", "Bronze"]}).json["options"] == \
        ["Platinum", "Gold", "Bronze"]
    # ... a new option is writable at once
    assert api.post("/v1/contacts", {"first_name": "B", "custom_fields": {"tier": "platinum"}}).status == 201


def test_removing_an_option_records_use_is_409_with_the_count(api: Api) -> None:
    # GIVEN a multi select whose "Golf" option a live and an archived contact use
    field = define(api, "contacts", "interests", "multi_select", options=["Golf", "Chess"])
    path = f"/v1/fields/{field['id']}"
    api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"interests": ["Golf", "Chess"]}})
    gone = api.post("/v1/contacts", {"first_name": "B", "custom_fields": {"interests": ["Golf"]}}).json
    assert api.delete(f"/v1/contacts/{gone['id']}").status == 204
    before = field_tables(api)

    # WHEN "Golf" is removed
    body = problem(api.patch(path, {"options": ["Chess"]}), 409)

    # THEN 409 counts both (a restore would bring the archived one's value back), nothing changed
    assert (body["count"], body["errors"][0]["field"]) == (2, "options")
    assert field_tables(api) == before
    assert api.get(path).json["options"] == ["Golf", "Chess"]


# ---- archive and restore ----------------------------------------------------------------------------
def test_archive_keeps_values_readable_but_not_writable_and_restore_brings_writes_back(api: Api) -> None:
    # GIVEN a required field and a contact with a value
    field = define(api, "contacts", "region", "text", required=True)
    path = f"/v1/fields/{field['id']}"
    contact = api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"region": "EU"}}).json

    # WHEN the field is archived (twice: a retry is harmless)
    assert api.delete(path).status == 204
    assert api.delete(path).status == 204

    # THEN it is gone from reads unless asked for, with a field.archived event
    problem(api.get(path), 404)
    archived = api.get(f"{path}?include_archived=true").json
    assert archived["archived_at"] is not None
    assert [e["type"] for e in field_events(api)] == ["field.created", "field.archived"]
    # ... the contact still shows its value, and may send it back unchanged
    record_path = f"/v1/contacts/{contact['id']}"
    assert api.get(record_path).json["custom_fields"] == {"region": "EU"}
    echo = api.patch(record_path, {"job_title": "CTO", "custom_fields": {"region": "EU"}})
    assert echo.status == 200 and echo.json["custom_fields"] == {"region": "EU"}
    # ... but not change or clear it
    assert error_fields(api.patch(record_path, {"custom_fields": {"region": "US"}})) == \
        [("custom_fields.region", "archived_field")]
    assert error_fields(api.patch(record_path, {"custom_fields": {"region": None}})) == \
        [("custom_fields.region", "archived_field")]
    # ... and it is no longer required of new records
    newcomer = api.post("/v1/contacts", {"first_name": "New"})
    assert newcomer.status == 201

    # WHEN restored while that newcomer lacks the (still required) value THEN 409 with the count
    assert problem(api.post(f"{path}/restore"), 409)["count"] == 1
    # ... an archived field can be relaxed, then restored
    assert api.patch(path, {"required": False}).status == 200
    restored = api.post(f"{path}/restore")
    assert restored.status == 200 and restored.json["archived_at"] is None
    assert field_events(api)[-1]["type"] == "field.restored"
    # ... and its values are writable again; restoring twice is a no-op
    assert api.patch(record_path, {"custom_fields": {"region": "US"}}).json["custom_fields"] == {"region": "US"}
    assert api.post(f"{path}/restore").status == 200


def test_archiving_a_unique_field_releases_its_values_and_restore_claims_them_again(api: Api) -> None:
    # GIVEN a unique field held by two contacts
    field = define(api, "contacts", "code", "text", unique=True)
    path = f"/v1/fields/{field['id']}"
    first = api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"code": "X1"}}).json
    api.post("/v1/contacts", {"first_name": "B", "custom_fields": {"code": "X2"}})
    assert len(field_tables(api).claims) == 2

    # WHEN the field is archived THEN nothing is held for a field no one can write
    assert api.delete(path).status == 204
    assert field_tables(api).claims == []

    # WHEN it is restored THEN the live records' values are claimed again, so duplicates stay out
    assert api.post(f"{path}/restore").status == 200
    assert len(field_tables(api).claims) == 2
    assert problem(api.post("/v1/contacts", {"first_name": "C", "custom_fields": {"code": "x1"}}),
                   409)["existing_id"] == first["id"]


def test_restoring_a_unique_field_is_refused_when_live_records_came_to_share_a_value(api: Api) -> None:
    # GIVEN a unique field; A holds "X", is archived (giving "X" back), and B takes "X"
    field = define(api, "contacts", "code", "text", unique=True)
    path = f"/v1/fields/{field['id']}"
    first = api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"code": "X"}}).json
    assert api.delete(f"/v1/contacts/{first['id']}").status == 204
    assert api.post("/v1/contacts", {"first_name": "B", "custom_fields": {"code": "X"}}).status == 201
    # ... then the field is archived and A restored: two live records hold "X"
    assert api.delete(path).status == 204
    assert api.post(f"/v1/contacts/{first['id']}/restore").status == 200

    # WHEN the field is restored THEN 409: two records share a value; it stays archived
    assert problem(api.post(f"{path}/restore"), 409)["count"] == 2
    assert api.get(f"{path}?include_archived=true").json["archived_at"] is not None


# ---- tenancy ----------------------------------------------------------------------------------------
def test_another_workspace_cannot_see_use_or_change_the_definitions(api: Api, other_api: Api) -> None:
    # GIVEN a field in one workspace
    field = define(api, "contacts", "tier", "single_select", options=["Gold"])
    path = f"/v1/fields/{field['id']}"

    # WHEN another workspace lists, reads, edits, archives or restores it THEN it does not exist there
    assert other_api.get("/v1/fields").json["data"] == []
    problem(other_api.get(f"{path}?include_archived=true"), 404)
    problem(other_api.patch(path, {"label": "Mine"}), 404)
    problem(other_api.delete(path), 404)
    problem(other_api.post(f"{path}/restore"), 404)
    # ... its records cannot take the value, nor search on it
    assert error_fields(other_api.post("/v1/contacts", {"first_name": "X", "custom_fields": {"tier": "Gold"}})) == \
        [("custom_fields.tier", "unknown_field")]
    search = other_api.post("/v1/contacts/search", {"sorts": [{"property": "custom_fields.tier"}]})
    assert error_fields(search) == [("sorts.0.property", "unknown_property")]
    # ... and the other workspace may define the same key for itself
    assert define(other_api, "contacts", "tier", "text")["id"] != field["id"]
    assert api.get(path).json == field
