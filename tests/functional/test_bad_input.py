"""Bad input is a 4xx problem, never a 5xx: JSON nested too deep, nulls, control characters, LIKE wildcards."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.api import Api

PROBLEM_JSON = "application/problem+json"


def _problem(reply, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert reply.status == status, (reply.status, reply.raw[:300])
    assert (reply.header("Content-Type") or "").startswith(PROBLEM_JSON)
    return reply.json  # type: ignore[no-any-return]


# ---- JSON nested too deep ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/contacts"), ("POST", "/v1/contacts/search"), ("POST", "/v1/contacts/batch/create"),
    ("POST", "/v1/deals"), ("POST", "/v1/webhooks"), ("POST", "/v1/automations"),
])
def test_a_body_of_50000_brackets_is_a_400(api: Api, method: str, path: str) -> None:
    # WHEN a body opens 50,000 arrays THEN it is refused as too deep, before anything recurses on it
    problem = _problem(api.request(method, path, raw="[" * 50_000), 400)
    assert problem["type"] == "urn:crm:problem:json-too-deep"


def test_custom_fields_nested_thousands_deep_are_a_400_and_write_nothing(api: Api) -> None:
    body = '{"first_name": "Ada", "custom_fields": ' + '{"x":' * 5_000 + '"deep"' + "}" * 5_000 + "}"
    _problem(api.post("/v1/contacts", raw=body), 400)
    _problem(api.patch("/v1/contacts/01ARZ3NDEKTSV4RRFFQ69G5FAV", raw=body), 400)
    assert api.get("/v1/contacts").json["data"] == []


def test_a_body_nested_just_within_the_limit_is_validated_as_usual(api: Api) -> None:
    # GIVEN a custom field value nested 60 levels (within the limit) WHEN created THEN an ordinary 422
    body = '{"first_name": "Ada", "custom_fields": {"x": ' + "[" * 60 + "]" * 60 + "}}"
    _problem(api.post("/v1/contacts", raw=body), 422)


# ---- null for fields that have no null ----------------------------------------------------------------------
def _records(api: Api) -> dict[str, str]:
    contact = api.post("/v1/contacts", {"first_name": "Ada", "tags": ["vip"]}).json["id"]
    company = api.post("/v1/companies", {"name": "Acme", "tags": ["vip"]}).json["id"]
    deal = api.post("/v1/deals", {"name": "Renewal", "contact_ids": [contact], "tags": ["vip"]}).json["id"]
    note = api.post("/v1/activities", {"kind": "note", "body": "hi", "links": {"contacts": [contact]}}).json["id"]
    field = api.post("/v1/fields", {"object_type": "contacts", "key": "tier", "label": "Tier",
                                    "type": "single_select", "options": ["Gold"]}).json["id"]
    webhook = api.post("/v1/webhooks", {"url": "https://example.com/hook", "event_types": ["contact.created"],
                                        "filter": [{"filters": [{"property": "first_name", "operator": "EQ",
                                                                 "value": "Ada"}]}]}).json["id"]
    rule = api.post("/v1/automations", {
        "name": "Tag", "object_type": "contacts", "trigger": {"type": "record_created"},
        "conditions": {"filter_groups": [{"filters": [{"property": "first_name", "operator": "EQ", "value": "Ada"}]}]},
        "actions": [{"type": "add_tag", "tag": "new"}]}).json["id"]
    return {"contacts": f"/v1/contacts/{contact}", "companies": f"/v1/companies/{company}",
            "deals": f"/v1/deals/{deal}", "activities": f"/v1/activities/{note}", "fields": f"/v1/fields/{field}",
            "webhooks": f"/v1/webhooks/{webhook}", "automations": f"/v1/automations/{rule}"}


REFUSED_NULLS = [
    ("contacts", "tags"), ("contacts", "custom_fields"),
    ("companies", "name"), ("companies", "tags"), ("companies", "custom_fields"),
    ("deals", "name"), ("deals", "tags"), ("deals", "custom_fields"), ("deals", "contact_ids"),
    ("deals", "pipeline_id"), ("deals", "stage_id"),
    ("activities", "links"),
    ("fields", "label"), ("fields", "options"), ("fields", "required"),
    ("webhooks", "url"), ("webhooks", "event_types"), ("webhooks", "active"),
    ("automations", "name"), ("automations", "trigger"), ("automations", "actions"),
]


def test_null_for_a_field_that_has_no_null_is_a_422_naming_it_and_changes_nothing(api: Api) -> None:
    paths = _records(api)
    for object_type, field in REFUSED_NULLS:
        before = api.get(paths[object_type]).json
        # WHEN a PATCH sends null for it
        problem = _problem(api.patch(paths[object_type], {field: None}), 422)
        # THEN the 422 names the field and says what is wrong; the record is as it was
        assert problem["errors"] == [{"field": field, "message": "may be left out, but not null",
                                      "code": "null_not_allowed"}], (object_type, field, problem)
        assert api.get(paths[object_type]).json == before, (object_type, field)
    problem = _problem(api.patch(paths["activities"], {"links": {"contacts": None}}), 422)
    assert [e["field"] for e in problem["errors"]] == ["links.contacts"]


def test_the_document_shows_no_null_where_null_is_refused() -> None:
    import app
    from layers.http.openapi import build_openapi

    document = build_openapi(app.app)
    for object_type, field in REFUSED_NULLS:
        operation = document["paths"][_template(object_type)]["patch"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"][field]
        assert "\"null\"" not in json.dumps(schema), (object_type, field, schema)
        assert "default" not in schema, (object_type, field, schema)


def _template(object_type: str) -> str:
    return {"fields": "/v1/fields/{field_id}", "webhooks": "/v1/webhooks/{webhook_id}",
            "automations": "/v1/automations/{automation_id}"}.get(object_type, f"/v1/{object_type}/{{record_id}}")


def test_null_clears_where_the_document_says_it_does(api: Api) -> None:
    paths = _records(api)
    # GIVEN fields whose null means "none": a webhook's filter, a rule's conditions, a deal's primary contact
    assert api.patch(paths["webhooks"], {"filter": None}).json["filter"] is None
    assert api.patch(paths["automations"], {"conditions": None}).json["conditions"] is None
    assert api.patch(paths["deals"], {"primary_contact_id": None}).json["primary_contact_id"] is None
    # AND a list is cleared with []
    assert api.patch(paths["contacts"], {"tags": []}).json["tags"] == []
    assert api.patch(paths["deals"], {"contact_ids": []}).json["contact_ids"] == []


def test_batch_inputs_with_null_lists_fail_alone(api: Api) -> None:
    contact = api.post("/v1/contacts", {"first_name": "Ada", "tags": ["vip"]}).json["id"]
    deal = api.post("/v1/deals", {"name": "Renewal"}).json["id"]
    for path, inputs, field in [
        ("/v1/contacts/batch/update", [{"id": contact, "tags": None}], "inputs.0.tags"),
        ("/v1/deals/batch/update", [{"id": deal, "contact_ids": None}], "inputs.0.contact_ids"),
    ]:
        reply = api.post(path, {"inputs": inputs})
        assert reply.status == 207, reply.json
        (result,) = reply.json["results"]
        assert result["status"] == 422 and result["problem"]["errors"][0]["field"] == field, result
    assert api.get(f"/v1/contacts/{contact}").json["tags"] == ["vip"]


# ---- % and _ in searches are characters, not LIKE wildcards ------------------------------------------------
LITERAL_TITLES = {"snake": "snake_case fan", "lookalike": "snakeXcase fan", "percent": "100% sure",
                  "number": "1000 sure", "backslash": "back\\slash", "plain": "plain"}


def _titles_found(api: Api, body: dict[str, Any], names: dict[str, str]) -> set[str]:
    reply = api.post("/v1/contacts/search", {**body, "limit": 200})
    assert reply.status == 200, reply.json
    return {names[row["id"]] for row in reply.json["data"]}


def check_like_wildcards_are_literal(api: Api) -> None:
    """On whichever database the app runs: `query` and CONTAINS_TOKEN match %, _ and \\ as themselves."""
    made = api.post("/v1/contacts/batch/create", {"inputs": [
        {"first_name": name, "job_title": title} for name, title in LITERAL_TITLES.items()]})
    assert made.status == 200, made.json
    names = {r["record"]["id"]: r["record"]["first_name"] for r in made.json["results"]}
    for query, expected in [("snake_case", {"snake"}), ("_", {"snake"}), ("e_c", {"snake"}), ("%", {"percent"}),
                            ("100%", {"percent"}), ("0%", {"percent"}), ("1000", {"number"}),
                            ("snake", {"snake", "lookalike"})]:
        assert _titles_found(api, {"query": query}, names) == expected, query
    for token, expected in [("e_c", {"snake"}), ("_", {"snake"}), ("%", {"percent"}), ("0% s", {"percent"}),
                            ("\\", {"backslash"}), ("k\\s", {"backslash"}), ("snake*fan", {"snake", "lookalike"})]:
        found = _titles_found(api, {"filter_groups": [{"filters": [
            {"property": "job_title", "operator": "CONTAINS_TOKEN", "value": token}]}]}, names)
        assert found == expected, token


def test_like_wildcards_in_searches_are_literal_characters(api: Api) -> None:
    check_like_wildcards_are_literal(api)


# ---- control characters -------------------------------------------------------------------------------------
# (\x0b, \x0c and \x1c-\x1f are whitespace to Python: at the ends of a value they are trimmed like spaces, and
# tags collapse them into one space; everywhere else they are refused like the others.)
@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x1b[31m", "\x08", "\ud800"])
def test_text_with_control_characters_is_a_422_naming_the_field(api: Api, bad: str) -> None:
    api.post("/v1/fields", {"object_type": "contacts", "key": "notes", "label": "Notes", "type": "long_text"})
    contact = api.post("/v1/contacts", {"first_name": "Ada"}).json["id"]
    for method, path, body, field in [
        ("POST", "/v1/contacts", {"first_name": f"A{bad}da"}, "first_name"),
        ("PATCH", f"/v1/contacts/{contact}", {"tags": ["ok", f"x{bad}y"]}, "tags.1"),
        ("PATCH", f"/v1/contacts/{contact}", {"custom_fields": {"notes": f"line{bad}"}}, "custom_fields.notes"),
        ("POST", "/v1/companies", {"name": f"Acme{bad}"}, "name"),
        ("POST", "/v1/deals", {"name": "Renewal", "lost_reason": f"{bad}"}, "lost_reason"),
        ("POST", "/v1/activities", {"kind": "note", "body": f"hi{bad}"}, "body"),
        ("POST", "/v1/contacts/search", {"query": f"ada{bad}"}, "query"),
    ]:
        # WHEN a text value holds one
        problem = _problem(api.request(method, path, body), 422)
        # THEN the 422 names the field
        fields = {e["field"]: e for e in problem["errors"]}
        assert field in fields, (path, problem)
        # (pydantic itself refuses a lone surrogate where the type is str)
        assert fields[field]["code"] in ("control_character", "string_unicode"), fields[field]
    # AND nothing was written
    assert [c["id"] for c in api.get("/v1/contacts").json["data"]] == [contact]
    assert api.get(f"/v1/contacts/{contact}").json["tags"] == []


def test_tabs_newlines_and_carriage_returns_are_text(api: Api) -> None:
    api.post("/v1/fields", {"object_type": "contacts", "key": "notes", "label": "Notes", "type": "long_text"})
    reply = api.post("/v1/contacts", {"first_name": "Ada", "custom_fields": {"notes": "one\ttwo\r\nthree"}})
    assert reply.status == 201, reply.json
    assert reply.json["custom_fields"]["notes"] == "one\ttwo\r\nthree"


def test_a_batch_input_with_a_control_character_fails_alone(api: Api) -> None:
    reply = api.post("/v1/contacts/batch/create", {"inputs": [{"first_name": "A\x00"}, {"first_name": "Bea"}]})
    assert reply.status == 207, reply.json
    failed, made = reply.json["results"]
    assert failed["status"] == 422 and failed["problem"]["errors"][0]["field"] == "inputs.0.first_name"
    assert made["status"] == 201
