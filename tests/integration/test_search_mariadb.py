"""Search on MariaDB: FULLTEXT `query`, JSON tag operators, datetime filters and keyset pages.

These are the parts whose SQL differs from SQLite (MATCH … AGAINST, JSON_CONTAINS, DATETIME(6),
NULL ordering), so the functional tier cannot vouch for them.
"""
from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import pytest

from shared.ids import new_id
from tests.functional.test_bad_input import check_like_wildcards_are_literal
from tests.support.api import Api

PEOPLE = [
    {"first_name": "Ada", "last_name": "Lovelace", "email": "ada.lovelace@analytical.example.com",
     "job_title": "Engine Programmer", "tags": ["vip", "math"]},
    {"first_name": "Alan", "last_name": "Turing", "email": "alan@bletchley.example.org",
     "job_title": "Cryptanalyst", "tags": ["math"]},
    {"first_name": "Grace", "last_name": "Hopper", "email": "grace_hopper@navy.example.mil",
     "job_title": "Rear Admiral", "tags": ["navy", "cobol"]},
    {"first_name": "Will", "last_name": "The Third", "email": "will@who.example.com", "tags": []},
    {"first_name": "Li", "last_name": "Wu", "email": "li.wu@ex.cn", "job_title": "QA"},
    {"first_name": "Seán", "last_name": "O'Brien", "email": "sean@obrien.example.ie", "job_title": "Engineer",
     "tags": ["vip"]},
]


def _ids(reply: Any) -> list[str]:
    assert reply.status == 200, reply.json
    return [row["id"] for row in reply.json["data"]]


@pytest.fixture
def people(api: Api) -> dict[str, str]:
    """First name → id, for a workspace holding PEOPLE."""
    made = api.post("/v1/contacts/batch/create", {"inputs": PEOPLE})
    assert made.status == 200, made.json
    return {r["record"]["first_name"]: r["record"]["id"] for r in made.json["results"]}


def _query(api: Api, query: str) -> set[str]:
    return set(_ids(api.post("/v1/contacts/search", {"query": query, "limit": 200})))


@pytest.mark.parametrize(("query", "expected"), [
    ("lovelace", {"Ada"}),
    ("LOVE", {"Ada"}),  # a prefix of a word, any case
    ("ada lovelace", {"Ada"}),  # every word must match …
    ("ada turing", set()),  # … not any
    ("engine", {"Ada", "Seán"}),  # prefix of "Engine" and of "Engineer"
    ("engineer", {"Seán"}),
    ("crypt", {"Alan"}),
    ("li", {"Li"}),  # < 3 characters: InnoDB does not index them, so LIKE anywhere
    ("wu", {"Li"}),
    ("qa", {"Li"}),
    ("ada.lovelace@analytical.example.com", {"Ada"}),  # an email is searchable as typed
    ("analytical", {"Ada"}),  # … and by any of its parts
    ("bletchley.example.org", {"Alan"}),
    ("grace_hopper@navy.example.mil", {"Grace"}),
    ("navy", {"Grace"}),
    ("o'brien", {"Seán"}),
    ("brien", {"Seán"}),
    ("will", {"Will"}),  # InnoDB's default stopword list holds "will", "the", "who" and "com"
    ("the third", {"Will"}),
    ("who.example.com", {"Will"}),
    ("example com", {"Ada", "Will"}),
    ("nobody", set()),
])
def test_full_text_query(api: Api, people: dict[str, str], query: str, expected: set[str]) -> None:
    # GIVEN six people WHEN searching with `query` THEN exactly the expected ones come back
    assert _query(api, query) == {people[name] for name in expected}, query


def test_full_text_query_combines_with_filters_and_hides_archived(api: Api, people: dict[str, str]) -> None:
    # GIVEN Ada archived
    assert api.delete(f"/v1/contacts/{people['Ada']}").status == 204
    # WHEN searching "engine" THEN only the live match is found, unless archived ones are asked for
    assert _query(api, "engine") == {people["Seán"]}
    archived_too = api.post("/v1/contacts/search", {"query": "engine", "include_archived": True})
    assert set(_ids(archived_too)) == {people["Ada"], people["Seán"]}
    # WHEN a filter is added THEN query AND filter
    filtered = api.post("/v1/contacts/search", {
        "query": "engine", "include_archived": True,
        "filter_groups": [{"filters": [{"property": "tags", "operator": "CONTAINS_TOKEN", "value": "vip"},
                                       {"property": "last_name", "operator": "EQ", "value": "Lovelace"}]}]})
    assert _ids(filtered) == [people["Ada"]]


def _search(api: Api, *filters: dict[str, Any], groups: list[list[dict[str, Any]]] | None = None) -> set[str]:
    filter_groups = [{"filters": list(g)} for g in groups] if groups else [{"filters": list(filters)}]
    return set(_ids(api.post("/v1/contacts/search", {"filter_groups": filter_groups, "limit": 200})))


def test_tag_operators_on_json_columns(api: Api, people: dict[str, str]) -> None:
    by_name = {v: k for k, v in people.items()}

    def names(found: set[str]) -> set[str]:
        return {by_name[i] for i in found}

    # GIVEN tags vip/math (Ada), math (Alan), navy/cobol (Grace), none (Will), missing (Li), vip (Seán)
    assert names(_search(api, {"property": "tags", "operator": "CONTAINS_TOKEN", "value": "vip"})) == {"Ada", "Seán"}
    assert names(_search(api, {"property": "tags", "operator": "EQ", "value": "math"})) == {"Ada", "Alan"}
    # A tag is a whole element, never a substring of one
    assert names(_search(api, {"property": "tags", "operator": "CONTAINS_TOKEN", "value": "vi"})) == set()
    assert names(_search(api, {"property": "tags", "operator": "IN", "values": ["navy", "math"]})) == {
        "Ada", "Alan", "Grace"}
    assert names(_search(api, {"property": "tags", "operator": "NOT_IN", "values": ["math", "cobol"]})) == {
        "Will", "Li", "Seán"}
    assert names(_search(api, {"property": "tags", "operator": "HAS_PROPERTY"})) == {"Ada", "Alan", "Grace", "Seán"}
    assert names(_search(api, {"property": "tags", "operator": "NOT_HAS_PROPERTY"})) == {"Will", "Li"}
    assert names(_search(api, {"property": "tags", "operator": "IN", "values": []})) == set()
    # groups are OR-ed, filters in a group AND-ed
    assert names(_search(api, groups=[
        [{"property": "tags", "operator": "CONTAINS_TOKEN", "value": "math"},
         {"property": "tags", "operator": "NOT_IN", "values": ["vip"]}],
        [{"property": "tags", "operator": "EQ", "value": "navy"}],
    ])) == {"Alan", "Grace"}
    # a value that is JSON syntax is a plain string to match, not JSON
    assert names(_search(api, {"property": "tags", "operator": "EQ", "value": '"vip"'})) == set()
    assert names(_search(api, {"property": "tags", "operator": "EQ", "value": "[]"})) == set()


def test_string_operators_on_nullable_columns(api: Api, people: dict[str, str]) -> None:
    by_name = {v: k for k, v in people.items()}

    def names(found: set[str]) -> set[str]:
        return {by_name[i] for i in found}

    assert names(_search(api, {"property": "job_title", "operator": "NOT_HAS_PROPERTY"})) == {"Will"}
    assert names(_search(api, {"property": "job_title", "operator": "NEQ", "value": "QA"})) == {
        "Ada", "Alan", "Grace", "Will", "Seán"}
    assert names(_search(api, {"property": "job_title", "operator": "NOT_IN", "values": ["QA", "Engineer"]})) == {
        "Ada", "Alan", "Grace", "Will"}
    assert names(_search(api, {"property": "job_title", "operator": "CONTAINS_TOKEN", "value": "engine*"})) == {
        "Ada", "Seán"}
    # LIKE wildcards typed by the client are literal
    assert names(_search(api, {"property": "job_title", "operator": "CONTAINS_TOKEN", "value": "%"})) == set()
    assert names(_search(api, {"property": "email", "operator": "CONTAINS_TOKEN", "value": "_hopper"})) == {"Grace"}


def test_datetime_filters_keep_microseconds_and_accept_both_notations(api: Api) -> None:
    # GIVEN three contacts created one after the other
    made = [api.post("/v1/contacts", {"email": f"t{i}-{new_id().lower()}@example.com"}).json for i in range(3)]
    first, middle, last = made
    ids = {row["id"] for row in made}

    def between(low: Any, high: Any) -> set[str]:
        return _search(api, {"property": "created_at", "operator": "BETWEEN", "value": low, "high_value": high}) & ids

    # THEN comparisons use the stored instant exactly (DATETIME(6): no rounding to the second)
    assert _search(api, {"property": "created_at", "operator": "EQ", "value": middle["created_at"]}) & ids == {
        middle["id"]}
    assert _search(api, {"property": "created_at", "operator": "GT", "value": middle["created_at"]}) & ids == {
        last["id"]}
    assert _search(api, {"property": "created_at", "operator": "GTE", "value": middle["created_at"]}) & ids == {
        middle["id"], last["id"]}
    assert _search(api, {"property": "created_at", "operator": "LT", "value": middle["created_at"]}) & ids == {
        first["id"]}
    assert between(first["created_at"], middle["created_at"]) == {first["id"], middle["id"]}
    # a timestamp with another UTC offset names the same instant
    from datetime import datetime, timezone

    instant = datetime.fromisoformat(middle["created_at"].replace("Z", "+00:00"))
    shifted = instant.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    assert _search(api, {"property": "created_at", "operator": "EQ", "value": shifted}) & ids == {middle["id"]}
    # epoch milliseconds work too (millisecond precision, so widen by one)
    millis = int(instant.timestamp() * 1000)
    assert middle["id"] in between(millis - 1, millis + 1)
    # archived_at: HAS_PROPERTY finds archived rows (when asked for)
    assert api.delete(f"/v1/contacts/{first['id']}").status == 204
    archived = api.post("/v1/contacts/search", {"include_archived": True, "filter_groups": [
        {"filters": [{"property": "archived_at", "operator": "HAS_PROPERTY"}]}]})
    assert set(_ids(archived)) == {first["id"]}


# ---- keyset pages --------------------------------------------------------------------------------
TITLES = [None, None, None, "Engineer", "engineer", "Manager", "Zoo keeper", "", "Analyst"]
STAGES = [None, "lead", "customer", "lead", None]


def _walk(api: Api, body: dict[str, Any], between_pages: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow next_cursor to the end, calling `between_pages()` after each page."""
    rows: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        reply = api.post("/v1/contacts/search", {**body, "cursor": cursor})
        assert reply.status == 200, reply.json
        rows.extend(reply.json["data"])
        pages += 1
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return rows, pages
        between_pages()
        assert pages < 200, "paging does not end"


def _sort_value(value: Any) -> tuple[int, Any]:
    # MariaDB: NULL is lowest; utf8mb4_unicode_ci compares case-insensitively
    return (0, "") if value is None else (1, value.casefold() if isinstance(value, str) else value)


@pytest.mark.parametrize("sorts", [
    [{"property": "job_title", "direction": "asc"}],
    [{"property": "job_title", "direction": "desc"}],
    [{"property": "lifecycle_stage", "direction": "desc"}, {"property": "job_title", "direction": "asc"}],
    [{"property": "owner_id", "direction": "asc"}],  # all NULL: only the id tie-breaker orders
    [],  # the default: newest first
])
def test_keyset_pages_neither_skip_nor_repeat_while_rows_come_and_go(api: Api, sorts: list[dict[str, str]]) -> None:
    # GIVEN 90 contacts with few distinct (and NULL) values in the sorted columns
    rng = random.Random(42)
    made = api.post("/v1/contacts/batch/create", {"inputs": [
        {"email": f"k{i}-{new_id().lower()}@example.com", "job_title": TITLES[i % len(TITLES)],
         "lifecycle_stage": STAGES[i % len(STAGES)]}
        for i in range(90)
    ]})
    assert made.status == 200, made.json
    initial = [r["record"]["id"] for r in made.json["results"]]
    archived: set[str] = set()
    inserted: list[str] = []

    def churn() -> None:
        # between pages: two new rows (some sorting before the cursor, some after) and one archived
        for _ in range(2):
            new = api.post("/v1/contacts", {"email": f"n-{new_id().lower()}@example.com",
                                            "job_title": rng.choice(TITLES), "lifecycle_stage": rng.choice(STAGES)})
            assert new.status == 201
            inserted.append(new.json["id"])
        victim = rng.choice([i for i in initial if i not in archived])
        assert api.delete(f"/v1/contacts/{victim}").status == 204
        archived.add(victim)

    # WHEN paging 8 at a time (> 10 pages) with rows added and archived between pages
    rows, pages = _walk(api, {"sorts": sorts, "limit": 8}, churn)

    # THEN no row comes twice, and every row present throughout came once
    seen = [row["id"] for row in rows]
    assert pages > 10
    assert len(seen) == len(set(seen)), "a row was repeated"
    missing = set(initial) - archived - set(seen)
    assert not missing, f"{len(missing)} rows present throughout were skipped"
    assert set(seen) <= set(initial) | set(inserted)
    # ... and the rows came in the requested order
    keys = [(s["property"], s["direction"] == "desc") for s in sorts]
    if keys:
        for before, after in itertools.pairwise(rows):
            for name, descending in keys:
                a, b = _sort_value(before[name]), _sort_value(after[name])
                if a != b:
                    assert (a > b) if descending else (a < b), (name, before[name], after[name])
                    break


def test_keyset_pages_with_query_and_filters_on_mariadb(api: Api) -> None:
    # GIVEN 60 matching contacts (half of them VIP) and 20 that do not match the query
    made = api.post("/v1/contacts/batch/create", {"inputs": [
        {"first_name": "Pat" if i < 60 else "Kim", "last_name": f"Person{i:03d}",
         "email": f"p{i}-{new_id().lower()}@example.com", "tags": ["vip"] if i % 2 else [],
         "job_title": TITLES[i % len(TITLES)]}
        for i in range(80)
    ]})
    assert made.status == 200
    expected = {r["record"]["id"] for r in made.json["results"][:60] if r["record"]["tags"]}

    # WHEN paging through "pat" ∧ vip by job title 7 at a time
    body = {"query": "pat", "limit": 7, "sorts": [{"property": "job_title", "direction": "desc"}],
            "filter_groups": [{"filters": [{"property": "tags", "operator": "CONTAINS_TOKEN", "value": "vip"}]}]}
    rows, pages = _walk(api, body, lambda: None)

    # THEN every match comes exactly once
    seen = [row["id"] for row in rows]
    assert pages == 5 and len(seen) == 30 == len(set(seen))
    assert set(seen) == expected


def test_like_wildcards_in_searches_are_literal_characters_on_mariadb(api: Api) -> None:
    # `query` (FULLTEXT for plain words, LIKE for short ones and those with % or _) and CONTAINS_TOKEN
    check_like_wildcards_are_literal(api)
