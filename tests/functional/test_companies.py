"""Companies over HTTP: domain normalisation and uniqueness, employee counts, a company's contacts."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from functions.companies.models import Company
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from shared.context import system_scope
from tests.support.api import Api, Reply

PROBLEM_JSON = "application/problem+json"


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    body = reply.json
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status and body["instance"] == reply.header("X-Request-Id")
    return body  # type: ignore[no-any-return]


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def create_company(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/companies", {"name": "Acme", **fields})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def company_rows(api: Api) -> list[tuple[str, str | None]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return [(c.id, c.domain) for c in uow.session.scalars(select(Company).order_by(Company.id))]


def company_events(api: Api) -> list[str]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        statement = select(OutboxEvent).where(OutboxEvent.object_type == "companies").order_by(OutboxEvent.id)
        return [e.event_type for e in uow.session.scalars(statement)]


def test_create_answers_a_flat_company_with_location_and_etag(api: Api) -> None:
    # GIVEN a company with every field
    body = {"name": "Acme", "domain": "acme.com", "industry": "Tools", "employee_count": 12,
            "owner_id": api.owner_user_id, "tags": ["key"]}

    # WHEN it is created
    reply = api.post("/v1/companies", body)

    # THEN 201, Location, ETag v1, and a flat record with the timestamps
    assert reply.status == 201
    record = reply.json
    assert reply.header("Location") == f"/v1/companies/{record['id']}" and reply.header("ETag") == '"v1"'
    assert {k: record[k] for k in body} == body
    read_only = {"id", "created_at", "updated_at", "archived_at", "custom_fields", "merged_into_id"}
    assert set(record) == set(body) | read_only
    assert record["archived_at"] is None
    assert company_events(api) == ["company.created"]


@pytest.mark.parametrize("given, stored", [
    ("HTTPS://www.Acme.com:8080/path/", "acme.com"),
    ("acme.com.", "acme.com"),
    ("www.acme.com.", "acme.com"),
    ("http://Sub.Acme.CO.uk/about?x=1#top", "sub.acme.co.uk"),
    ("  ACME.io  ", "acme.io"),
    ("acme.com:443", "acme.com"),
])
def test_domains_are_normalised(api: Api, given: str, stored: str) -> None:
    # GIVEN a domain written the way people paste it
    # WHEN a company is created with it
    record = create_company(api, domain=given)

    # THEN the stored domain is the bare, lower-cased host
    assert record["domain"] == stored
    assert company_rows(api) == [(record["id"], stored)]


@pytest.mark.parametrize("domain", ["not a domain", "localhost", "", "acme..com", "-acme.com", "http://"])
def test_invalid_domains_are_422(api: Api, domain: str) -> None:
    # GIVEN something that is not a domain
    # WHEN a company is created with it
    reply = api.post("/v1/companies", {"name": "Bad", "domain": domain})

    # THEN 422 names domain, and nothing is written
    assert "domain" in error_fields(assert_problem(reply, 422))
    assert company_rows(api) == []


def test_domain_is_unique_per_workspace_however_it_is_spelled(api: Api, other_api: Api) -> None:
    # GIVEN a company at acme.com
    first = create_company(api, domain="acme.com")

    # WHEN another is created with the same domain written differently
    reply = api.post("/v1/companies", {"name": "Acme again", "domain": "https://WWW.acme.com/contact"})

    # THEN 409 names the existing company; nothing else is written
    problem = assert_problem(reply, 409)
    assert problem["existing_id"] == first["id"] and first["id"] in problem["detail"]
    assert company_rows(api) == [(first["id"], "acme.com")]
    assert company_events(api) == ["company.created"]
    # AND another workspace may use the same domain
    assert other_api.post("/v1/companies", {"name": "Acme", "domain": "acme.com"}).status == 201


def test_updating_to_a_taken_domain_is_409(api: Api) -> None:
    # GIVEN two companies
    first = create_company(api, domain="one.com")
    second = create_company(api, name="Two", domain="two.com")

    # WHEN the second takes the first's domain
    reply = api.patch(f"/v1/companies/{second['id']}", {"domain": "www.one.com"})

    # THEN 409 names the first; the second keeps its domain
    assert assert_problem(reply, 409)["existing_id"] == first["id"]
    assert api.get(f"/v1/companies/{second['id']}").json["domain"] == "two.com"


def test_companies_without_a_domain_do_not_clash(api: Api) -> None:
    # GIVEN a company without a domain
    create_company(api, name="No domain 1")

    # WHEN another is created without one
    reply = api.post("/v1/companies", {"name": "No domain 2"})

    # THEN both exist
    assert reply.status == 201
    assert len(company_rows(api)) == 2


@pytest.mark.parametrize("count", [-1, 10_000_001, 1.5, "many", [3]])
def test_invalid_employee_counts_are_422(api: Api, count: Any) -> None:
    # GIVEN an employee count that is not a whole number in range
    # WHEN a company is created with it
    reply = api.post("/v1/companies", {"name": "Counted", "employee_count": count})

    # THEN 422 names employee_count
    assert error_fields(assert_problem(reply, 422)) == {"employee_count"}
    assert company_rows(api) == []


@pytest.mark.parametrize("count", [0, 10_000_000])
def test_employee_count_bounds_are_accepted(api: Api, count: int) -> None:
    # GIVEN a count at a bound
    # WHEN a company is created with it
    record = create_company(api, employee_count=count)

    # THEN it is kept
    assert record["employee_count"] == count


def test_employee_count_is_validated_on_update(api: Api) -> None:
    # GIVEN a company
    record = create_company(api, employee_count=5)

    # WHEN it is patched to a negative count
    reply = api.patch(f"/v1/companies/{record['id']}", {"employee_count": -5})

    # THEN 422, and the count is unchanged
    assert error_fields(assert_problem(reply, 422)) == {"employee_count"}
    assert api.get(f"/v1/companies/{record['id']}").json["employee_count"] == 5


@pytest.mark.parametrize("body, field", [({}, "name"), ({"name": ""}, "name"), ({"name": None}, "name"),
                                         ({"name": "A", "website": "a.com"}, "website"),
                                         ({"name": "A", "owner_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "owner_id")])
def test_create_validation_names_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    # GIVEN a body missing or misusing a field
    # WHEN it is posted
    reply = api.post("/v1/companies", body)

    # THEN 422 names it, and nothing is written
    assert field in error_fields(assert_problem(reply, 422))
    assert company_rows(api) == [] and company_events(api) == []


def test_update_archive_restore_write_their_events(api: Api) -> None:
    # GIVEN a company
    record = create_company(api, domain="ev.com")

    # WHEN it is updated, archived and restored
    assert api.patch(f"/v1/companies/{record['id']}", {"industry": "Retail"}).status == 200
    assert api.delete(f"/v1/companies/{record['id']}").status == 204
    assert_problem(api.get(f"/v1/companies/{record['id']}"), 404)
    restored = api.post(f"/v1/companies/{record['id']}/restore")

    # THEN each change has its event, in order, and the company is back at version 4
    assert restored.status == 200 and restored.header("ETag") == '"v4"'
    assert company_events(api) == ["company.created", "company.updated", "company.archived", "company.restored"]


def test_another_workspace_cannot_see_or_change_a_company(api: Api, other_api: Api) -> None:
    # GIVEN a company in the other workspace
    theirs = create_company(other_api, name="Theirs", domain="theirs.com")
    path = f"/v1/companies/{theirs['id']}"

    # WHEN this workspace tries every route on it
    replies = [api.get(path), api.patch(path, {"name": "Mine"}), api.delete(path),
               api.post(f"{path}/restore"), api.get(f"{path}/history"), api.get(f"{path}/contacts")]

    # THEN each is 404, it is never listed or found, and it is unchanged
    for reply in replies:
        assert_problem(reply, 404)
    assert api.get("/v1/companies?include_archived=true").json["data"] == []
    assert api.post("/v1/companies/search", {"query": "theirs", "include_archived": True}).json["data"] == []
    assert other_api.get(path).json == theirs


# ---- a company's contacts -----------------------------------------------------------------------------
def test_a_companys_contacts_lists_only_its_own_contacts_in_pages(api: Api) -> None:
    # GIVEN two companies, five contacts at the first, two at the second and one at none
    acme = create_company(api, name="Acme", domain="acme.com")
    globex = create_company(api, name="Globex", domain="globex.com")
    at_acme = {api.post("/v1/contacts", {"first_name": f"A{i}", "company_id": acme["id"]}).json["id"]
               for i in range(5)}
    for i in range(2):
        assert api.post("/v1/contacts", {"first_name": f"G{i}", "company_id": globex["id"]}).status == 201
    assert api.post("/v1/contacts", {"first_name": "Loner"}).status == 201

    # WHEN Acme's contacts are read two at a time
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        reply = api.get(f"/v1/companies/{acme['id']}/contacts?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200
        seen += [r["id"] for r in reply.json["data"]]
        assert all(r["company_id"] == acme["id"] for r in reply.json["data"])
        pages += 1
        cursor = reply.json["next_cursor"]
        if cursor is None:
            break

    # THEN exactly Acme's five appear, once each, over three pages
    assert pages == 3
    assert sorted(seen) == sorted(at_acme) and len(seen) == len(set(seen))


def test_a_companys_archived_contacts_show_only_when_asked(api: Api) -> None:
    # GIVEN a company with one live and one archived contact
    acme = create_company(api, domain="acme.com")
    live = api.post("/v1/contacts", {"first_name": "Live", "company_id": acme["id"]}).json
    gone = api.post("/v1/contacts", {"first_name": "Gone", "company_id": acme["id"]}).json
    assert api.delete(f"/v1/contacts/{gone['id']}").status == 204

    # WHEN its contacts are listed with and without include_archived
    default = api.get(f"/v1/companies/{acme['id']}/contacts").json["data"]
    everything = api.get(f"/v1/companies/{acme['id']}/contacts?include_archived=true").json["data"]

    # THEN the archived one appears only when asked for
    assert [r["id"] for r in default] == [live["id"]]
    assert {r["id"] for r in everything} == {live["id"], gone["id"]}


def test_a_cursor_from_one_companys_contacts_does_not_page_another(api: Api) -> None:
    # GIVEN two companies with contacts, and a cursor from the first one's list
    acme = create_company(api, domain="acme.com")
    globex = create_company(api, name="Globex", domain="globex.com")
    for company in (acme, globex):
        for i in range(3):
            assert api.post("/v1/contacts", {"first_name": f"C{i}", "company_id": company["id"]}).status == 201
    cursor = api.get(f"/v1/companies/{acme['id']}/contacts?limit=1").json["next_cursor"]

    # WHEN that cursor is used on the second company's list
    reply = api.get(f"/v1/companies/{globex['id']}/contacts?limit=1&cursor={cursor}")

    # THEN it is refused
    assert "cursor" in error_fields(assert_problem(reply, 422))


def test_contacts_of_an_unknown_company_are_404(api: Api) -> None:
    # GIVEN no such company
    # WHEN its contacts are listed
    reply = api.get("/v1/companies/01JAAAAAAAAAAAAAAAAAAAAAAA/contacts")

    # THEN 404
    assert_problem(reply, 404)


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "page=2"])
def test_company_contacts_query_is_validated(api: Api, query: str) -> None:
    # GIVEN a company
    acme = create_company(api, domain="acme.com")

    # WHEN its contacts are listed with a bad query
    reply = api.get(f"/v1/companies/{acme['id']}/contacts?{query}")

    # THEN 422
    assert_problem(reply, 422)
