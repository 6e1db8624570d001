"""POST /v1/{object}/search: operators, OR of AND-groups, full text, sorts with keyset cursors."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.support.api import Api, Reply

# The people every operator test searches: first names are unique, so results compare as name sets.
PEOPLE: list[dict[str, Any]] = [
    {"first_name": "Ann", "last_name": "lee", "email": "ann@acme.com", "job_title": "CTO",
     "lifecycle_stage": "lead", "tags": ["vip", "beta"]},
    {"first_name": "Bob", "last_name": "lee", "email": "bob@globex.com", "job_title": "Sales Director",
     "lifecycle_stage": "customer", "tags": ["beta"]},
    {"first_name": "Cy", "last_name": "moss", "email": "cy@acme.com", "lifecycle_stage": "qualified"},
    {"first_name": "Dee", "email": "dee@initech.com", "job_title": "Engineer", "tags": ["vip"]},
    {"first_name": "Eve", "last_name": "adams", "email": "eve@globex.com", "job_title": ""},
]
EVERYONE = {p["first_name"] for p in PEOPLE}


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    body = reply.json
    assert body["status"] == status and body["instance"] == reply.header("X-Request-Id")
    assert {"type", "title", "detail"} <= set(body)
    return body  # type: ignore[no-any-return]


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def seed(api: Api, path: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reply = api.post(f"{path}/batch/create", {"inputs": inputs})
    assert reply.status == 200, reply.raw
    return [r["record"] for r in reply.json["results"]]


def search(api: Api, body: dict[str, Any], path: str = "/v1/contacts") -> Reply:
    return api.post(f"{path}/search", body)


def names(reply: Reply, key: str = "first_name") -> set[str]:
    assert reply.status == 200, reply.raw
    return {r[key] for r in reply.json["data"]}


def one_filter(prop: str, operator: str, **operands: Any) -> dict[str, Any]:
    return {"filter_groups": [{"filters": [{"property": prop, "operator": operator, **operands}]}]}


def search_all(api: Api, body: dict[str, Any], path: str = "/v1/contacts") -> tuple[list[dict[str, Any]], int]:
    """Every page of a search; the records in answer order and the number of pages."""
    records: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        reply = search(api, {**body, "cursor": cursor}, path)
        assert reply.status == 200, reply.raw
        assert len(reply.json["data"]) <= body.get("limit", 50)
        records += reply.json["data"]
        pages += 1
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return records, pages


# ---- operators -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("prop, operator, operands, expected", [
    ("email", "EQ", {"value": "ann@acme.com"}, {"Ann"}),
    ("lifecycle_stage", "EQ", {"value": "lead"}, {"Ann"}),
    ("lifecycle_stage", "NEQ", {"value": "lead"}, EVERYONE - {"Ann"}),
    ("last_name", "NEQ", {"value": "lee"}, {"Cy", "Dee", "Eve"}),
    ("last_name", "LT", {"value": "lee"}, {"Eve"}),
    ("last_name", "LTE", {"value": "lee"}, {"Ann", "Bob", "Eve"}),
    ("last_name", "GT", {"value": "lee"}, {"Cy"}),
    ("last_name", "GTE", {"value": "lee"}, {"Ann", "Bob", "Cy"}),
    ("last_name", "BETWEEN", {"value": "b", "high_value": "m"}, {"Ann", "Bob"}),
    ("lifecycle_stage", "IN", {"values": ["lead", "customer"]}, {"Ann", "Bob"}),
    ("lifecycle_stage", "IN", {"values": []}, set()),
    ("lifecycle_stage", "NOT_IN", {"values": ["lead", "customer"]}, {"Cy", "Dee", "Eve"}),
    ("job_title", "HAS_PROPERTY", {}, {"Ann", "Bob", "Dee"}),
    ("job_title", "NOT_HAS_PROPERTY", {}, {"Cy", "Eve"}),
    ("last_name", "NOT_HAS_PROPERTY", {}, {"Dee"}),
    ("email", "CONTAINS_TOKEN", {"value": "acme"}, {"Ann", "Cy"}),
    ("email", "CONTAINS_TOKEN", {"value": "*@globex.com"}, {"Bob", "Eve"}),
    ("email", "CONTAINS_TOKEN", {"value": "%"}, set()),
    ("job_title", "CONTAINS_TOKEN", {"value": "direct"}, {"Bob"}),
    ("tags", "EQ", {"value": "vip"}, {"Ann", "Dee"}),
    ("tags", "CONTAINS_TOKEN", {"value": "beta"}, {"Ann", "Bob"}),
    ("tags", "IN", {"values": ["beta", "vip"]}, {"Ann", "Bob", "Dee"}),
    ("tags", "NOT_IN", {"values": ["vip"]}, {"Bob", "Cy", "Eve"}),
    ("tags", "HAS_PROPERTY", {}, {"Ann", "Bob", "Dee"}),
    ("tags", "NOT_HAS_PROPERTY", {}, {"Cy", "Eve"}),
])
def test_each_operator_selects_the_matching_contacts(
    api: Api, prop: str, operator: str, operands: dict[str, Any], expected: set[str]
) -> None:
    # GIVEN the five people
    seed(api, "/v1/contacts", PEOPLE)

    # WHEN they are searched with one filter
    reply = search(api, one_filter(prop, operator, **operands))

    # THEN exactly the matching ones are answered
    assert names(reply) == expected


@pytest.mark.parametrize("operator, operands, expected", [
    ("EQ", {"value": 50}, {"Mid"}),
    ("NEQ", {"value": 50}, {"Small", "Big", "Unknown"}),
    ("LT", {"value": 50}, {"Small"}),
    ("LTE", {"value": 50}, {"Small", "Mid"}),
    ("GT", {"value": 50}, {"Big"}),
    ("GTE", {"value": 50}, {"Mid", "Big"}),
    ("BETWEEN", {"value": 10, "high_value": 50}, {"Small", "Mid"}),
    ("IN", {"values": [10, 200]}, {"Small", "Big"}),
    ("NOT_IN", {"values": [10, 200]}, {"Mid", "Unknown"}),
    ("HAS_PROPERTY", {}, {"Small", "Mid", "Big"}),
    ("NOT_HAS_PROPERTY", {}, {"Unknown"}),
])
def test_number_operators_on_company_employee_count(
    api: Api, operator: str, operands: dict[str, Any], expected: set[str]
) -> None:
    # GIVEN companies of 10, 50 and 200 people, and one of unknown size
    seed(api, "/v1/companies", [{"name": "Small", "employee_count": 10}, {"name": "Mid", "employee_count": 50},
                                {"name": "Big", "employee_count": 200}, {"name": "Unknown"}])

    # WHEN they are searched on employee_count
    reply = search(api, one_filter("employee_count", operator, **operands), "/v1/companies")

    # THEN exactly the matching ones are answered
    assert names(reply, "name") == expected


def test_datetime_operators_on_created_at(api: Api) -> None:
    # GIVEN three contacts created one after another
    made = [api.post("/v1/contacts", {"first_name": n}).json for n in ("First", "Second", "Third")]
    at = [m["created_at"] for m in made]
    instants = [datetime.fromisoformat(a.replace("Z", "+00:00")) for a in at]
    assert instants[0] < instants[1] < instants[2]

    # WHEN they are searched on created_at around the second one's time
    def found(operator: str, **operands: Any) -> set[str]:
        return names(search(api, one_filter("created_at", operator, **operands)))

    # THEN each operator compares instants
    assert found("EQ", value=at[1]) == {"Second"}
    assert found("NEQ", value=at[1]) == {"First", "Third"}
    assert found("LT", value=at[1]) == {"First"}
    assert found("LTE", value=at[1]) == {"First", "Second"}
    assert found("GT", value=at[1]) == {"Third"}
    assert found("GTE", value=at[1]) == {"Second", "Third"}
    assert found("BETWEEN", value=at[0], high_value=at[1]) == {"First", "Second"}
    assert found("GT", value=0) == {"First", "Second", "Third"}  # epoch milliseconds
    assert found("HAS_PROPERTY") == {"First", "Second", "Third"}


def test_id_and_reference_properties_are_searchable(api: Api) -> None:
    # GIVEN a contact at a company with an owner, and one with neither
    acme = api.post("/v1/companies", {"name": "Acme", "domain": "acme.com"}).json
    at_acme = api.post("/v1/contacts", {"first_name": "Owned", "company_id": acme["id"],
                                        "owner_id": api.owner_user_id}).json
    api.post("/v1/contacts", {"first_name": "Free"})

    # WHEN they are searched by id, company and owner
    by_id = search(api, one_filter("id", "IN", values=[at_acme["id"]]))
    by_company = search(api, one_filter("company_id", "EQ", value=acme["id"]))
    no_owner = search(api, one_filter("owner_id", "NOT_HAS_PROPERTY"))

    # THEN each answers the right contact
    assert names(by_id) == {"Owned"} and names(by_company) == {"Owned"} and names(no_owner) == {"Free"}


# ---- groups and full text ----------------------------------------------------------------------------
def test_filters_in_a_group_are_anded_and_groups_are_ored(api: Api) -> None:
    # GIVEN the five people
    seed(api, "/v1/contacts", PEOPLE)

    # WHEN (tags has vip AND job_title is set) OR (last_name = moss) is searched
    body = {"filter_groups": [
        {"filters": [{"property": "tags", "operator": "EQ", "value": "vip"},
                     {"property": "job_title", "operator": "HAS_PROPERTY"}]},
        {"filters": [{"property": "last_name", "operator": "EQ", "value": "moss"}]},
    ]}
    reply = search(api, body)

    # THEN the union of the two groups' intersections is answered
    assert names(reply) == {"Ann", "Dee", "Cy"}
    # AND a group whose filters contradict each other matches nothing
    contradiction = {"filter_groups": [{"filters": [{"property": "email", "operator": "EQ", "value": "ann@acme.com"},
                                                    {"property": "last_name", "operator": "EQ", "value": "moss"}]}]}
    assert names(search(api, contradiction)) == set()


@pytest.mark.parametrize("query, expected", [
    ("ACME", {"Ann", "Cy"}),
    ("ann acme", {"Ann"}),
    ("Lee", {"Ann", "Bob"}),
    ("lee globex", {"Bob"}),
    ("sales dir", {"Bob"}),
    ("engineer", {"Dee"}),
    ("acme globex", set()),
    ("zzz", set()),
    ("  ", EVERYONE),
])
def test_query_matches_every_word_across_the_text_fields(api: Api, query: str, expected: set[str]) -> None:
    # GIVEN the five people
    seed(api, "/v1/contacts", PEOPLE)

    # WHEN a full-text query is searched
    reply = search(api, {"query": query})

    # THEN the contacts whose names, email or job title hold every word (case-insensitively) are answered
    assert names(reply) == expected


def test_query_and_filters_combine(api: Api) -> None:
    # GIVEN the five people
    seed(api, "/v1/contacts", PEOPLE)

    # WHEN a query and a filter are both given
    reply = search(api, {"query": "acme", **one_filter("lifecycle_stage", "EQ", value="qualified")})

    # THEN both must hold
    assert names(reply) == {"Cy"}


def test_companies_query_covers_name_domain_and_industry(api: Api) -> None:
    # GIVEN three companies
    seed(api, "/v1/companies", [{"name": "Acme Tools", "domain": "acme.com", "industry": "Hardware"},
                                {"name": "Globex", "domain": "globex.io", "industry": "Energy"},
                                {"name": "Initech", "industry": "Software"}])

    # WHEN each text field is queried
    # THEN the right company answers
    assert names(search(api, {"query": "tools"}, "/v1/companies"), "name") == {"Acme Tools"}
    assert names(search(api, {"query": "globex.io"}, "/v1/companies"), "name") == {"Globex"}
    assert names(search(api, {"query": "SOFTWARE"}, "/v1/companies"), "name") == {"Initech"}


# ---- archived ------------------------------------------------------------------------------------------
def test_archived_contacts_are_hidden_unless_asked_for(api: Api) -> None:
    # GIVEN the five people, one of them archived
    records = seed(api, "/v1/contacts", PEOPLE)
    ann = next(r for r in records if r["first_name"] == "Ann")
    assert api.delete(f"/v1/contacts/{ann['id']}").status == 204

    # WHEN they are searched with and without include_archived
    hidden = search(api, {"query": "acme"})
    shown = search(api, {"query": "acme", "include_archived": True})
    only_archived = search(api, {**one_filter("archived_at", "HAS_PROPERTY"), "include_archived": True})

    # THEN the archived one appears only when asked for
    assert names(hidden) == {"Cy"}
    assert names(shown) == {"Ann", "Cy"}
    assert names(only_archived) == {"Ann"}


# ---- sorts and cursors -----------------------------------------------------------------------------------
def _many(api: Api, count: int = 23) -> list[dict[str, Any]]:
    pool = ["adams", "brown", "brown", "chen", None, "diaz", "brown", None]
    inputs = []
    for i in range(count):
        last = pool[i % len(pool)]
        inputs.append({"first_name": f"P{i:02d}", **({"last_name": last} if last else {}),
                       "lifecycle_stage": ["lead", "customer", "other"][i % 3]})
    return seed(api, "/v1/contacts", inputs)


def _asc_key(record: dict[str, Any]) -> tuple[bool, str, str]:
    # NULL sorts lowest; ties broken by id in the first sort's direction.
    return (record["last_name"] is not None, record["last_name"] or "", record["id"])


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sorted_search_pages_through_every_record_once_in_order(api: Api, direction: str) -> None:
    # GIVEN 23 contacts whose last names repeat, some missing
    records = _many(api)

    # WHEN they are searched sorted by last name, four at a time
    found, pages = search_all(api, {"sorts": [{"property": "last_name", "direction": direction}], "limit": 4})

    # THEN every page follows on from the last: all 23, none twice, in sort order
    assert pages == 6
    expected = sorted(records, key=_asc_key, reverse=direction == "desc")
    assert [r["id"] for r in found] == [r["id"] for r in expected]


def test_two_sort_keys_page_in_order(api: Api) -> None:
    # GIVEN 23 contacts
    records = _many(api)

    # WHEN they are sorted by lifecycle stage ascending then last name descending, five at a time
    body = {"sorts": [{"property": "lifecycle_stage", "direction": "asc"},
                      {"property": "last_name", "direction": "desc"}], "limit": 5}
    found, pages = search_all(api, body)

    # THEN the pages together are in that order (ties by id, ascending like the first key), each record once
    expected = sorted(records, key=lambda r: r["id"])  # stable sorts, least significant key first
    expected.sort(key=lambda r: (r["last_name"] is not None, r["last_name"] or ""), reverse=True)
    expected.sort(key=lambda r: r["lifecycle_stage"])
    assert pages == 5
    assert [r["id"] for r in found] == [r["id"] for r in expected]


def test_created_at_descending_pages_newest_first(api: Api) -> None:
    # GIVEN contacts created in two requests
    records = _many(api, 6) + _many(api, 5)

    # WHEN they are sorted by created_at descending, two at a time
    found, _ = search_all(api, {"sorts": [{"property": "created_at", "direction": "desc"}], "limit": 2})

    # THEN they come newest first, each once
    def instant(r: dict[str, Any]) -> tuple[datetime, str]:
        return datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")), r["id"]

    assert [r["id"] for r in found] == [r["id"] for r in sorted(records, key=instant, reverse=True)]


def test_pages_stay_stable_when_contacts_are_added_between_pages(api: Api) -> None:
    # GIVEN 10 contacts and the first page of a last-name sort
    records = _many(api, 10)
    body = {"sorts": [{"property": "last_name", "direction": "asc"}], "limit": 3}
    first = search(api, body).json
    seen = [r["id"] for r in first["data"]]

    # WHEN more contacts (sorting before and after the cursor) are added, then paging continues
    _many(api, 8)
    cursor = first["next_cursor"]
    while cursor:
        page = search(api, {**body, "cursor": cursor}).json
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]

    # THEN no contact repeats and none of the original ten is skipped
    assert len(seen) == len(set(seen))
    assert {r["id"] for r in records} <= set(seen)


@pytest.mark.parametrize("change", [
    {"sorts": [{"property": "last_name", "direction": "desc"}]},
    {"sorts": [{"property": "first_name", "direction": "asc"}]},
    {"filter_groups": [{"filters": [{"property": "lifecycle_stage", "operator": "EQ", "value": "lead"}]}]},
    {"query": "brown"},
    {"include_archived": True},
])
def test_a_cursor_reused_with_another_query_is_422(api: Api, change: dict[str, Any]) -> None:
    # GIVEN a cursor from a last-name sort
    _many(api, 10)
    body = {"sorts": [{"property": "last_name", "direction": "asc"}], "limit": 3}
    cursor = search(api, body).json["next_cursor"]
    assert cursor

    # WHEN it is sent with different sorts, filters, query or archive setting
    reply = search(api, {**body, **change, "cursor": cursor})

    # THEN it is refused, naming the cursor
    assert "cursor" in error_fields(assert_problem(reply, 422))


def test_a_tampered_cursor_is_422(api: Api) -> None:
    # GIVEN a real cursor with one character changed
    _many(api, 5)
    cursor = search(api, {"limit": 2}).json["next_cursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]

    # WHEN it is used
    reply = search(api, {"limit": 2, "cursor": tampered})

    # THEN 422
    assert "cursor" in error_fields(assert_problem(reply, 422))


# ---- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, field", [
    ({"filter_groups": [{"filters": [{"property": "email", "operator": "EQ", "value": "a@b.c"},
                                     {"property": "shoe_size", "operator": "EQ", "value": 42}]}]},
     "filter_groups.0.filters.1.property"),
    ({"filter_groups": [{"filters": [{"property": "email", "operator": "HAS_PROPERTY"}]},
                        {"filters": [{"property": "nickname", "operator": "HAS_PROPERTY"}]}]},
     "filter_groups.1.filters.0.property"),
    ({"sorts": [{"property": "last_name"}, {"property": "favourite_colour", "direction": "asc"}]},
     "sorts.1.property"),
    ({"sorts": [{"property": "tags"}]}, "sorts.0.property"),
    ({"filter_groups": [{"filters": [{"property": "lifecycle_stage", "operator": "LT", "value": "lead"}]}]},
     "filter_groups.0.filters.0.operator"),
    ({"filter_groups": [{"filters": [{"property": "lifecycle_stage", "operator": "EQ", "value": "vip"}]}]},
     "filter_groups.0.filters.0.value"),
    ({"filter_groups": [{"filters": [{"property": "created_at", "operator": "GT", "value": "yesterday"}]}]},
     "filter_groups.0.filters.0.value"),
    ({"filter_groups": [{"filters": [{"property": "email", "operator": "LIKE", "value": "a"}]}]},
     "filter_groups.0.filters.0.operator"),
    ({"filter_groups": [{"filters": [{"property": "email", "operator": "IN", "value": "a"}]}]},
     "filter_groups.0.filters.0"),
    ({"filter_groups": [{"filters": [{"property": "last_name", "operator": "BETWEEN", "value": "a"}]}]},
     "filter_groups.0.filters.0"),
    ({"filter_groups": [{"filters": [{"property": "email", "operator": "EQ"}]}]}, "filter_groups.0.filters.0"),
    ({"filter_groups": [{"filters": []}]}, "filter_groups.0.filters"),
    ({"sorts": [{"property": "email", "direction": "up"}]}, "sorts.0.direction"),
    ({"limit": 0}, "limit"),
    ({"limit": 201}, "limit"),
    ({"page": 2}, "page"),
])
def test_invalid_searches_are_422_naming_the_field_path(api: Api, body: dict[str, Any], field: str) -> None:
    # GIVEN a search that cannot be run
    # WHEN it is posted
    reply = search(api, body)

    # THEN 422 names the path of the field at fault
    assert field in error_fields(assert_problem(reply, 422))


def test_search_body_must_be_json_object(api: Api) -> None:
    # GIVEN a malformed body and a non-object body
    # WHEN they are posted
    # THEN 400 and 422
    assert_problem(api.post("/v1/contacts/search", raw="{"), 400)
    assert_problem(api.post("/v1/contacts/search", raw="[]"), 422)


def test_search_never_crosses_workspaces(api: Api, other_api: Api) -> None:
    # GIVEN the five people in another workspace only
    seed(other_api, "/v1/contacts", PEOPLE)

    # WHEN this workspace searches broadly
    everything = search(api, {"include_archived": True})
    by_text = search(api, {"query": "acme"})

    # THEN it finds nothing
    assert names(everything) == set() and names(by_text) == set()
