"""Search on custom fields: every operator valid for each type as a filter, refusals for the others,
and sorts on each sortable type with keyset pages that never skip or repeat (NULLs lowest)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests.support.api import Api, provision
from tests.support.custom_fields import define_every_type, where

# Lower-case text only: SQLite compares bytes, MariaDB ignores case (its own test covers that).
PEOPLE: list[tuple[str, dict[str, Any]]] = [
    ("Ann", {"note": "alpha", "score": 10, "budget": "100.50", "renewal_on": "2027-01-01",
             "last_seen_at": "2026-01-01T00:00:00Z", "vip": True, "tier": "Gold", "interests": ["Golf", "Chess"],
             "billing_email": "ann@example.com", "website_url": "https://ann.example.com"}),
    ("Bob", {"note": "beta", "score": -5.5, "budget": "99.9999", "renewal_on": "2026-06-30",
             "last_seen_at": "2026-01-01T00:00:00.5Z", "vip": False, "tier": "Silver", "interests": ["Sailing"],
             "billing_email": "bob@example.org", "website_url": "http://bob.example.com/x"}),
    ("Cy", {"note": "gamma", "score": 10, "budget": "1000", "renewal_on": "2026-12-31",
            "last_seen_at": "2025-12-31T23:59:59+01:00", "vip": True, "tier": "Gold", "interests": ["Chess"],
            "billing_email": "cy@example.com", "website_url": "https://cy.example.net"}),
    ("Dee", {"score": 0, "budget": "0", "tier": "Bronze", "bio": "long story"}),
    ("Eve", {}),
]
ALL = {name for name, _ in PEOPLE}


@dataclass(frozen=True)
class People:
    api: Api
    ids: dict[str, str]  # first name → id
    stored: dict[str, dict[str, Any]]  # first name → custom_fields as stored


@pytest.fixture(scope="module")
def people() -> Iterator[People]:
    """One workspace for the module (the data is only read): a field of every type and five contacts."""
    api = provision("Custom search")
    define_every_type(api, "contacts")
    made = api.post("/v1/contacts/batch/create", {"inputs": [
        {"first_name": name, "custom_fields": values} for name, values in PEOPLE]})
    assert made.status == 200, made.raw
    records = [r["record"] for r in made.json["results"]]
    yield People(api, {r["first_name"]: r["id"] for r in records},
                 {r["first_name"]: r["custom_fields"] for r in records})


def _names(people: People, body: dict[str, Any]) -> set[str]:
    reply = people.api.post("/v1/contacts/search", body)
    assert reply.status == 200, reply.raw
    by_id = {v: k for k, v in people.ids.items()}
    return {by_id[r["id"]] for r in reply.json["data"]}


FILTERS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    # text
    ("note", "EQ", {"value": "alpha"}, {"Ann"}),
    ("note", "NEQ", {"value": "alpha"}, ALL - {"Ann"}),
    ("note", "IN", {"values": ["alpha", "gamma"]}, {"Ann", "Cy"}),
    ("note", "NOT_IN", {"values": ["alpha"]}, ALL - {"Ann"}),
    ("note", "GT", {"value": "beta"}, {"Cy"}),
    ("note", "LTE", {"value": "beta"}, {"Ann", "Bob"}),
    ("note", "BETWEEN", {"value": "alpha", "high_value": "beta"}, {"Ann", "Bob"}),
    ("note", "CONTAINS_TOKEN", {"value": "amm"}, {"Cy"}),
    ("note", "CONTAINS_TOKEN", {"value": "a*a"}, {"Ann"}),  # a wildcard anchors the pattern
    ("note", "HAS_PROPERTY", {}, {"Ann", "Bob", "Cy"}),
    ("note", "NOT_HAS_PROPERTY", {}, {"Dee", "Eve"}),
    # long text (filterable, not sortable)
    ("bio", "CONTAINS_TOKEN", {"value": "story"}, {"Dee"}),
    ("bio", "NOT_HAS_PROPERTY", {}, ALL - {"Dee"}),
    # number
    ("score", "EQ", {"value": 10}, {"Ann", "Cy"}),
    ("score", "NEQ", {"value": 10}, {"Bob", "Dee", "Eve"}),
    ("score", "GT", {"value": 0}, {"Ann", "Cy"}),
    ("score", "GTE", {"value": 0}, {"Ann", "Cy", "Dee"}),
    ("score", "LT", {"value": 0}, {"Bob"}),
    ("score", "LTE", {"value": -5.5}, {"Bob"}),
    ("score", "BETWEEN", {"value": -6, "high_value": 0}, {"Bob", "Dee"}),
    ("score", "IN", {"values": [0, -5.5]}, {"Bob", "Dee"}),
    ("score", "NOT_IN", {"values": [10]}, {"Bob", "Dee", "Eve"}),
    ("score", "HAS_PROPERTY", {}, ALL - {"Eve"}),
    ("score", "NOT_HAS_PROPERTY", {}, {"Eve"}),
    # currency: exact amounts, as strings or numbers
    ("budget", "EQ", {"value": "100.5"}, {"Ann"}),
    ("budget", "EQ", {"value": 100.5}, {"Ann"}),
    ("budget", "NEQ", {"value": "0.00"}, {"Ann", "Bob", "Cy", "Eve"}),
    ("budget", "GT", {"value": "99.9999"}, {"Ann", "Cy"}),
    ("budget", "GTE", {"value": "99.9999"}, {"Ann", "Bob", "Cy"}),
    ("budget", "LT", {"value": 100}, {"Bob", "Dee"}),
    ("budget", "LTE", {"value": "100.50"}, {"Ann", "Bob", "Dee"}),
    ("budget", "BETWEEN", {"value": "0", "high_value": "100.50"}, {"Ann", "Bob", "Dee"}),
    ("budget", "IN", {"values": ["1000", 0]}, {"Cy", "Dee"}),
    ("budget", "NOT_IN", {"values": ["1000"]}, {"Ann", "Bob", "Dee", "Eve"}),
    ("budget", "HAS_PROPERTY", {}, ALL - {"Eve"}),
    ("budget", "NOT_HAS_PROPERTY", {}, {"Eve"}),
    # date
    ("renewal_on", "EQ", {"value": "2027-01-01"}, {"Ann"}),
    ("renewal_on", "NEQ", {"value": "2027-01-01"}, ALL - {"Ann"}),
    ("renewal_on", "LT", {"value": "2026-12-31"}, {"Bob"}),
    ("renewal_on", "LTE", {"value": "2026-12-31"}, {"Bob", "Cy"}),
    ("renewal_on", "GT", {"value": "2026-12-31"}, {"Ann"}),
    ("renewal_on", "GTE", {"value": "2026-06-30"}, {"Ann", "Bob", "Cy"}),
    ("renewal_on", "BETWEEN", {"value": "2026-07-01", "high_value": "2027-01-01"}, {"Ann", "Cy"}),
    ("renewal_on", "IN", {"values": ["2026-06-30", "2027-01-01"]}, {"Ann", "Bob"}),
    ("renewal_on", "NOT_IN", {"values": ["2026-06-30"]}, ALL - {"Bob"}),
    ("renewal_on", "HAS_PROPERTY", {}, {"Ann", "Bob", "Cy"}),
    ("renewal_on", "NOT_HAS_PROPERTY", {}, {"Dee", "Eve"}),
    # datetime: any offset, compared in UTC to the microsecond
    ("last_seen_at", "EQ", {"value": "2026-01-01T01:00:00+01:00"}, {"Ann"}),
    ("last_seen_at", "NEQ", {"value": "2026-01-01T00:00:00Z"}, ALL - {"Ann"}),
    ("last_seen_at", "GT", {"value": "2026-01-01T00:00:00Z"}, {"Bob"}),
    ("last_seen_at", "GTE", {"value": "2026-01-01T00:00:00Z"}, {"Ann", "Bob"}),
    ("last_seen_at", "LT", {"value": "2026-01-01T00:00:00Z"}, {"Cy"}),
    ("last_seen_at", "LTE", {"value": "2025-12-31T22:59:59Z"}, {"Cy"}),
    ("last_seen_at", "BETWEEN", {"value": "2025-12-31T23:00:00Z", "high_value": "2026-01-01T00:00:00.5Z"},
     {"Ann", "Bob"}),
    ("last_seen_at", "HAS_PROPERTY", {}, {"Ann", "Bob", "Cy"}),
    ("last_seen_at", "NOT_HAS_PROPERTY", {}, {"Dee", "Eve"}),
    # boolean
    ("vip", "EQ", {"value": True}, {"Ann", "Cy"}),
    ("vip", "EQ", {"value": False}, {"Bob"}),
    ("vip", "NEQ", {"value": True}, {"Bob", "Dee", "Eve"}),
    ("vip", "HAS_PROPERTY", {}, {"Ann", "Bob", "Cy"}),
    ("vip", "NOT_HAS_PROPERTY", {}, {"Dee", "Eve"}),
    # single select
    ("tier", "EQ", {"value": "Gold"}, {"Ann", "Cy"}),
    ("tier", "NEQ", {"value": "Gold"}, {"Bob", "Dee", "Eve"}),
    ("tier", "IN", {"values": ["Silver", "Bronze"]}, {"Bob", "Dee"}),
    ("tier", "NOT_IN", {"values": ["Gold"]}, {"Bob", "Dee", "Eve"}),
    ("tier", "HAS_PROPERTY", {}, ALL - {"Eve"}),
    ("tier", "NOT_HAS_PROPERTY", {}, {"Eve"}),
    # multi select
    ("interests", "EQ", {"value": "Chess"}, {"Ann", "Cy"}),
    ("interests", "CONTAINS_TOKEN", {"value": "Golf"}, {"Ann"}),
    ("interests", "IN", {"values": ["Sailing", "Golf"]}, {"Ann", "Bob"}),
    ("interests", "NOT_IN", {"values": ["Chess"]}, {"Bob", "Dee", "Eve"}),
    ("interests", "HAS_PROPERTY", {}, {"Ann", "Bob", "Cy"}),
    ("interests", "NOT_HAS_PROPERTY", {}, {"Dee", "Eve"}),
    # email and url are strings
    ("billing_email", "EQ", {"value": "bob@example.org"}, {"Bob"}),
    ("billing_email", "CONTAINS_TOKEN", {"value": "example.com"}, {"Ann", "Cy"}),
    ("website_url", "CONTAINS_TOKEN", {"value": "https://*"}, {"Ann", "Cy"}),
    ("website_url", "NOT_HAS_PROPERTY", {}, {"Dee", "Eve"}),
]


@pytest.mark.parametrize(("key", "operator", "operands", "expected"), FILTERS,
                         ids=[f"{k}-{o}-{i}" for i, (k, o, _, _) in enumerate(FILTERS)])
def test_filters(people: People, key: str, operator: str, operands: dict[str, Any], expected: set[str]) -> None:
    # GIVEN five contacts with custom values WHEN filtered THEN exactly the expected ones match
    assert _names(people, where(f"custom_fields.{key}", operator, **operands)) == expected


def test_filters_combine_with_built_in_properties_and_groups(people: People) -> None:
    # GIVEN the contacts WHEN (vip AND score > 5) OR (tier = Bronze AND first_name = Dee) THEN Ann, Cy and Dee
    body = {"filter_groups": [
        {"filters": [{"property": "custom_fields.vip", "operator": "EQ", "value": True},
                     {"property": "custom_fields.score", "operator": "GT", "value": 5}]},
        {"filters": [{"property": "custom_fields.tier", "operator": "EQ", "value": "Bronze"},
                     {"property": "first_name", "operator": "EQ", "value": "Dee"}]},
    ]}
    assert _names(people, body) == {"Ann", "Cy", "Dee"}


@pytest.mark.parametrize(("body", "at", "code"), [
    (where("custom_fields.vip", "LT", value=True), "filter_groups.0.filters.0.operator", "operator"),
    (where("custom_fields.tier", "CONTAINS_TOKEN", value="Go"), "filter_groups.0.filters.0.operator", "operator"),
    (where("custom_fields.tier", "GT", value="Gold"), "filter_groups.0.filters.0.operator", "operator"),
    (where("custom_fields.interests", "LT", value="Golf"), "filter_groups.0.filters.0.operator", "operator"),
    (where("custom_fields.score", "CONTAINS_TOKEN", value="1"), "filter_groups.0.filters.0.operator", "operator"),
    (where("custom_fields.tier", "EQ", value="Platinum"), "filter_groups.0.filters.0.value", "invalid"),
    (where("custom_fields.score", "EQ", value="ten"), "filter_groups.0.filters.0.value", "invalid"),
    (where("custom_fields.budget", "EQ", value="lots"), "filter_groups.0.filters.0.value", "invalid"),
    (where("custom_fields.renewal_on", "EQ", value="2026-13-01"), "filter_groups.0.filters.0.value", "invalid"),
    (where("custom_fields.last_seen_at", "GT", value="soon"), "filter_groups.0.filters.0.value", "invalid"),
    (where("custom_fields.vip", "EQ", value="yes"), "filter_groups.0.filters.0.value", "invalid"),
    (where("custom_fields.nope", "EQ", value=1), "filter_groups.0.filters.0.property", "unknown_property"),
    ({"sorts": [{"property": "custom_fields.interests"}]}, "sorts.0.property", "not_sortable"),
    ({"sorts": [{"property": "custom_fields.bio"}]}, "sorts.0.property", "not_sortable"),
    ({"sorts": [{"property": "custom_fields.nope"}]}, "sorts.0.property", "unknown_property"),
])
def test_operators_and_values_that_do_not_fit_the_type_are_422(
    people: People, body: dict[str, Any], at: str, code: str
) -> None:
    # GIVEN a filter or sort that does not fit the field's type WHEN searched THEN 422 naming it
    reply = people.api.post("/v1/contacts/search", body)
    assert reply.status == 422, reply.raw
    assert [(e["field"], e["code"]) for e in reply.json["errors"]] == [(at, code)]


def _expected_order(people: People, key: str, descending: bool) -> list[str]:
    """NULLs lowest, ties by id (creation order), both reversed for descending. Stored datetimes are
    fixed-width UTC text, so text order is time order; amounts compare as decimals."""
    def sort_key(name: str) -> tuple[bool, Any, str]:
        value = people.stored[name].get(key)
        if value is None:
            return (False, 0, people.ids[name])
        return (True, Decimal(value) if key == "budget" else value, people.ids[name])

    rows = sorted(people.ids, key=sort_key)
    return list(reversed(rows)) if descending else rows


SORTABLE = ["note", "score", "budget", "renewal_on", "last_seen_at", "vip", "tier", "billing_email", "website_url"]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", SORTABLE)
def test_sorts_page_through_every_record_once_in_order(people: People, key: str, direction: str) -> None:
    # GIVEN the contacts
    # WHEN sorted by the custom field, two per page, following each next_cursor
    seen: list[str] = []
    body: dict[str, Any] = {"sorts": [{"property": f"custom_fields.{key}", "direction": direction}], "limit": 2}
    for _ in range(5):
        reply = people.api.post("/v1/contacts/search", body)
        assert reply.status == 200, reply.raw
        seen += [r["first_name"] for r in reply.json["data"]]
        if reply.json["next_cursor"] is None:
            break
        body["cursor"] = reply.json["next_cursor"]

    # THEN every record comes once, in value order (NULLs lowest, ties by id)
    assert seen == _expected_order(people, key, direction == "desc")


def test_a_cursor_only_pages_its_own_sort(people: People) -> None:
    # GIVEN a page sorted by score
    api = people.api
    first = api.post("/v1/contacts/search", {"sorts": [{"property": "custom_fields.score"}], "limit": 2}).json
    # WHEN its cursor is used with another sort THEN 422
    reply = api.post("/v1/contacts/search", {"sorts": [{"property": "custom_fields.budget"}], "limit": 2,
                                             "cursor": first["next_cursor"]})
    assert reply.status == 422 and reply.json["errors"][0]["field"] == "cursor"


def test_archived_fields_stay_searchable(api: Api) -> None:
    # GIVEN a field with a value, then archived
    define_every_type(api, "contacts")
    contact = api.post("/v1/contacts", {"first_name": "A", "custom_fields": {"score": 3}}).json
    field_id = api.get("/v1/fields?object=contacts").json["data"][2]["id"]
    assert api.delete(f"/v1/fields/{field_id}").status == 204
    # WHEN searched on it THEN the stored value is still found (values are not lost with the field)
    reply = api.post("/v1/contacts/search", where("custom_fields.score", "EQ", value=3))
    assert [r["id"] for r in reply.json["data"]] == [contact["id"]]
