"""Another workspace's records are invisible and unchangeable, on every path, on MariaDB.

The HTTP paths run through chalice.test.Client; the data-layer tests drive the unit of work
directly with ORM statements, because that is where the workspace filter is added.
"""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update

from functions.companies.models import Company
from functions.contacts.models import Contact
from layers.db.engine import get_engine
from layers.db.uow import UnitOfWork
from shared.context import system_scope
from shared.ids import new_id
from tests.support.api import Api

OBJECTS: dict[str, dict[str, Any]] = {
    "contacts": {"create": lambda tag: {"first_name": "Zed", "last_name": f"Secret{tag}",
                                        "email": f"zed-{tag}@example.com"},
                 "patch": {"job_title": "Hacked"}, "unique": "email"},
    "companies": {"create": lambda tag: {"name": f"Secret {tag}", "domain": f"secret-{tag}.example.com"},
                  "patch": {"industry": "Hacked"}, "unique": "domain"},
}


def _tag() -> str:
    return new_id().lower()[-10:]


def _create(api: Api, object_type: str, tag: str) -> dict[str, Any]:
    reply = api.post(f"/v1/{object_type}", OBJECTS[object_type]["create"](tag))
    assert reply.status == 201, reply.json
    return reply.json  # type: ignore[no-any-return]


def _ids(reply_json: dict[str, Any]) -> list[str]:
    return [row["id"] for row in reply_json["data"]]


@pytest.mark.parametrize("object_type", ["contacts", "companies"])
def test_another_workspace_cannot_read_or_find_a_record(api: Api, other_api: Api, object_type: str) -> None:
    # GIVEN a record in workspace B
    tag = _tag()
    theirs = _create(other_api, object_type, tag)
    base = f"/v1/{object_type}"

    # WHEN workspace A asks for it on every read path THEN it does not exist for A
    assert api.get(f"{base}/{theirs['id']}").status == 404
    assert api.get(f"{base}/{theirs['id']}?include_archived=true").status == 404
    assert api.get(f"{base}/{theirs['id']}/history").status == 404
    listed = api.get(f"{base}?limit=200&include_archived=true")
    assert listed.status == 200 and theirs["id"] not in _ids(listed.json)

    unique = OBJECTS[object_type]["unique"]
    searches = [
        {"filter_groups": [{"filters": [{"property": "id", "operator": "EQ", "value": theirs["id"]}]}]},
        {"filter_groups": [{"filters": [{"property": unique, "operator": "EQ", "value": theirs[unique]}]}]},
        {"query": f"secret{tag}" if object_type == "contacts" else f"secret {tag}"},
        {"query": "secret", "include_archived": True},
    ]
    for body in searches:
        found = api.post(f"{base}/search", body)
        assert found.status == 200, found.json
        assert theirs["id"] not in _ids(found.json), body
        # ... while B finds its own record with the same searches (the search itself works)
        assert theirs["id"] in _ids(other_api.post(f"{base}/search", body).json), body


@pytest.mark.parametrize("object_type", ["contacts", "companies"])
def test_another_workspace_cannot_change_a_record(api: Api, other_api: Api, object_type: str) -> None:
    # GIVEN an active and an archived record in workspace B
    base = f"/v1/{object_type}"
    theirs = _create(other_api, object_type, _tag())
    archived = _create(other_api, object_type, _tag())
    assert other_api.delete(f"{base}/{archived['id']}").status == 204

    # WHEN workspace A writes to them on every write path
    patch = OBJECTS[object_type]["patch"]
    assert api.patch(f"{base}/{theirs['id']}", patch).status == 404
    assert api.patch(f"{base}/{theirs['id']}", patch, headers={"If-Match": '"v1"'}).status == 404
    assert api.delete(f"{base}/{theirs['id']}").status == 404
    assert api.post(f"{base}/{archived['id']}/restore").status == 404
    mine = _create(api, object_type, _tag())
    for operation, inputs in (
        ("update", [{"id": theirs["id"], **patch}, {"id": mine["id"], **patch}, {"id": archived["id"], **patch}]),
        ("archive", [{"id": theirs["id"]}, {"id": mine["id"]}, {"id": archived["id"]}]),
    ):
        batch = api.post(f"{base}/batch/{operation}", {"inputs": inputs})
        # THEN each of B's inputs fails on its own with 404, while A's own record is changed
        assert batch.status == 207, batch.json
        assert [r["status"] for r in batch.json["results"]] == [404, 200, 404]
        assert all(r["problem"]["status"] == 404 for r in batch.json["results"] if r["outcome"] == "error")

    # ... and B's records are exactly as B left them: unchanged, never archived or restored
    unchanged = other_api.get(f"{base}/{theirs['id']}")
    assert unchanged.status == 200 and unchanged.header("ETag") == '"v1"'
    assert unchanged.json == theirs
    assert other_api.get(f"{base}/{archived['id']}").status == 404
    history = other_api.get(f"{base}/{theirs['id']}/history").json["data"]
    assert {entry["action"] for entry in history} == {"created"}


@pytest.mark.parametrize("object_type", ["contacts", "companies"])
def test_unique_properties_are_unique_per_workspace(api: Api, other_api: Api, object_type: str) -> None:
    # GIVEN workspace B uses a unique value
    tag = _tag()
    theirs = _create(other_api, object_type, tag)
    unique = OBJECTS[object_type]["unique"]

    # WHEN workspace A creates a record with the same value THEN it is allowed, and is A's own record
    mine = _create(api, object_type, tag)
    assert mine[unique] == theirs[unique] and mine["id"] != theirs["id"]
    # ... and a second one in A clashes with A's record, never naming B's
    clash = api.post(f"/v1/{object_type}", OBJECTS[object_type]["create"](tag))
    assert clash.status == 409
    assert clash.json["existing_id"] == mine["id"]
    # ... upsert on the unique value updates A's record, never B's
    upsert = api.post(f"/v1/{object_type}/batch/upsert",
                      {"inputs": [{**OBJECTS[object_type]["create"](tag), "tags": ["upserted"]}]})
    assert upsert.status == 200, upsert.json
    assert upsert.json["results"][0]["record"]["id"] == mine["id"]
    assert other_api.get(f"/v1/{object_type}/{theirs['id']}").json["tags"] == []


def test_a_company_of_another_workspace_lists_no_contacts_and_cannot_be_referenced(api: Api, other_api: Api) -> None:
    # GIVEN a company of B with a contact of B
    company = _create(other_api, "companies", _tag())
    contact = other_api.post("/v1/contacts", {"email": f"c-{_tag()}@example.com", "company_id": company["id"]})
    assert contact.status == 201

    # WHEN A lists that company's contacts THEN the company does not exist for A
    assert api.get(f"/v1/companies/{company['id']}/contacts").status == 404
    assert api.get(f"/v1/companies/{company['id']}/contacts?include_archived=true").status == 404
    # ... and A cannot attach its own contacts to it
    assert api.post("/v1/contacts", {"email": f"a-{_tag()}@example.com", "company_id": company["id"]}).status == 422
    # ... while B sees its own contact there
    listed = other_api.get(f"/v1/companies/{company['id']}/contacts")
    assert _ids(listed.json) == [contact.json["id"]]


# ---- the data layer ----------------------------------------------------------------------------------
def _seed_contacts(api: Api, count: int) -> list[str]:
    made = api.post("/v1/contacts/batch/create",
                     {"inputs": [{"email": f"seed-{i}-{_tag()}@example.com", "job_title": "Original"}
                                 for i in range(count)]})
    assert made.status == 200, made.json
    return [r["record"]["id"] for r in made.json["results"]]


def _raw_rows(workspace_id: str) -> dict[str, tuple[str | None, int]]:
    with get_engine().connect() as connection:
        rows = connection.execute(
            text("SELECT id, job_title, version FROM contacts WHERE workspace_id = :ws"), {"ws": workspace_id}
        )
        return {row.id: (row.job_title, row.version) for row in rows}


def test_unit_of_work_scopes_orm_select_update_and_delete_to_its_workspace(api: Api, other_api: Api) -> None:
    # GIVEN contacts in A and in B
    mine = _seed_contacts(api, 3)
    theirs = _seed_contacts(other_api, 3)
    before_theirs = _raw_rows(other_api.workspace_id)

    # WHEN A's unit of work selects everything, then an unfiltered ORM UPDATE and DELETE
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        selected = set(uow.session.scalars(select(Contact.id)))
        counted = uow.session.scalar(select(func.count()).select_from(Contact))
        by_their_id = uow.session.scalars(select(Contact).where(Contact.id.in_(theirs))).all()
        updated = uow.session.execute(
            update(Contact).values(job_title="Rewritten").execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        uow.commit()

    # THEN only A's rows were seen and changed
    assert selected == set(mine) and counted == 3
    assert by_their_id == []
    assert updated == 3
    assert {title for title, _ in _raw_rows(api.workspace_id).values()} == {"Rewritten"}
    assert _raw_rows(other_api.workspace_id) == before_theirs

    # WHEN A deletes by B's ids, then everything
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        aimed = uow.session.execute(
            delete(Contact).where(Contact.id.in_(theirs)).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        deleted = uow.session.execute(delete(Contact).execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        uow.commit()

    # THEN B's rows are all still there, unchanged
    assert aimed == 0 and deleted == 3
    assert _raw_rows(api.workspace_id) == {}
    assert _raw_rows(other_api.workspace_id) == before_theirs


def test_unit_of_work_get_by_primary_key_and_joined_queries_are_scoped(api: Api, other_api: Api) -> None:
    # GIVEN a company of B and one of A, and a contact of A pointing (by raw id) at B's company
    their_company = _create(other_api, "companies", _tag())
    my_company = _create(api, "companies", _tag())
    [their_contact] = _seed_contacts(other_api, 1)

    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        # WHEN A loads B's rows by primary key THEN they do not exist
        assert uow.session.get(Contact, their_contact) is None
        assert uow.session.get(Company, their_company["id"]) is None
        # WHEN A joins contacts to companies THEN both sides carry A's filter
        joined = uow.session.execute(
            select(Company.id, Contact.id).join(Contact, Contact.company_id == Company.id, isouter=True)
        ).all()
        assert {company_id for company_id, _ in joined} == {my_company["id"]}
        # WHEN A updates B's company by id through the ORM THEN nothing matches
        assert uow.session.execute(
            update(Company).where(Company.id == their_company["id"]).values(industry="Hacked")
            .execution_options(synchronize_session=False)
        ).rowcount == 0  # type: ignore[attr-defined]
        uow.commit()
    assert other_api.get(f"/v1/companies/{their_company['id']}").json["industry"] is None
