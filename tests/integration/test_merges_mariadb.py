"""Duplicates and merges on MariaDB: the SQL keys agree with the rules, the duplicates query finds planted
pairs among thousands of contacts without loading them all, merge + undo round-trip, and tenancy."""
from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import insert, literal, select

from functions.companies.models import Company
from functions.contacts.models import Contact
from functions.merges import repository, rules
from functions.merges.models import Merge
from layers.db.engine import get_engine
from layers.db.uow import UnitOfWork
from shared.clock import utcnow
from shared.context import system_scope
from shared.ids import new_id
from tests.support.api import Api, Reply


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["Acme, Inc.", "ACME Inc", "A.C.M.E. Co., Ltd.", "Co Ltd", "O'Brien Holdings LLC",
                                  "Acme Incubator", "Smith & Sons (UK) Limited", "inc", "Globex  GmbH"])
def test_company_name_key_in_sql_is_the_rule(name: str) -> None:
    # GIVEN a company name WHEN MariaDB computes its key THEN it is the rules' key
    with UnitOfWork(system_scope(new_id())) as uow:
        key = uow.session.scalar(select(repository._MysqlKeys().company_name(literal(name))))
    assert key == rules.company_name_key(name)


def test_email_phone_and_domain_keys_in_sql_are_the_rules() -> None:
    # GIVEN tricky emails, phones and domains
    emails = ["Ann.Lee+crm@Gmail.com", "annlee@gmail.com", "j.smith@acme.co.uk", "plain@example.com"]
    phones = ["+44 20 7946 0958", "020 7946 0958", "(555) 010-0100 x12", "555 0100 ext. 7", "12 34"]
    domains = ["acme.com", "eu.acme.com", "acme.co.uk", "shop.acme.com.au", "acme.de"]
    keys = repository._MysqlKeys()

    # WHEN MariaDB computes their keys
    with UnitOfWork(system_scope(new_id())) as uow:
        def sql(expression: Any) -> Any:
            return uow.session.scalar(select(expression))

        sql_emails = [(sql(keys.local_part(literal(e))), sql(keys.email_domain(literal(e)))) for e in emails]
        sql_phones = [sql(keys.phone(literal(p))) for p in phones]
        sql_domains = [sql(keys.domain_root(literal(d))) for d in domains]

    # THEN they are the rules' keys
    assert sql_emails == [(rules.local_key(e), (rules.email_parts(e) or ("", ""))[1]) for e in emails]
    assert sql_phones == [rules.phone_key(p) for p in phones]
    assert sql_domains == [rules.domain_root(d) for d in domains]


def _seed_contacts(workspace_id: str, count: int) -> None:
    """Distinct contacts (no shared key), written in bulk straight to the table."""
    now = utcnow()
    rows = [{"id": new_id(), "workspace_id": workspace_id, "first_name": f"First{i}", "last_name": f"Last{i}",
             "email": f"person{i}@example{i % 50}.com", "phone": f"+1 {200 + i // 10000:03d} {i % 10000:04d} 11",
             "tags": [], "custom": {}, "email_key": f"person{i}@example{i % 50}.com", "created_at": now,
             "updated_at": now, "version": 1} for i in range(count)]
    with get_engine().begin() as connection:
        connection.execute(insert(Contact.__table__), rows)


def test_duplicates_among_thousands_of_contacts(api: Api, other_api: Api) -> None:
    # GIVEN 3,000 distinct contacts, the same in another workspace, and three planted pairs here
    _seed_contacts(api.workspace_id, 3000)
    _seed_contacts(other_api.workspace_id, 3000)
    acme = created(api.post("/v1/companies", {"name": "Acme"}))["id"]
    planted = {
        "similar_email": [{"email": "ann.lee+x@gmail.com"}, {"email": "annlee@gmail.com"}],
        "same_name_and_company": [{"first_name": "Zoë", "last_name": "Brandt", "company_id": acme},
                                  {"first_name": "ZOË", "last_name": "brandt", "company_id": acme}],
        "same_phone": [{"first_name": "P", "phone": "+44 20 7946 0958"}, {"first_name": "Q", "phone": "020 7946 0958"}],
    }
    ids = {reason: sorted(created(api.post("/v1/contacts", body))["id"] for body in bodies)
           for reason, bodies in planted.items()}

    # WHEN the duplicates are listed
    started = time.perf_counter()
    reply = api.get("/v1/contacts/duplicates?limit=200")
    elapsed = time.perf_counter() - started

    # THEN exactly the planted pairs come back, with their reasons, quickly
    assert reply.status == 200, reply.raw
    found = {tuple(p["record_ids"]): p["reasons"] for p in reply.json["data"]}
    assert found == {tuple(ids[reason]): [reason] for reason in planted}
    assert elapsed < 5, f"duplicates took {elapsed:.2f}s on 3,000 contacts"
    # AND the other workspace's identical seed makes no pair with ours, and it has none itself
    other = other_api.get("/v1/contacts/duplicates")
    assert other.status == 200 and other.json["data"] == []


def test_candidate_groups_load_only_records_sharing_a_key(api: Api) -> None:
    # GIVEN 2,000 distinct contacts and one pair sharing a phone
    _seed_contacts(api.workspace_id, 2000)
    pair = sorted(created(api.post("/v1/contacts", {"first_name": n, "phone": "+1 555 0100 900"}))["id"]
                  for n in ("A", "B"))

    # WHEN the candidate groups are computed in SQL
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        groups = repository.candidate_groups(uow, Contact, repository.contact_keys(uow.session, Contact))

    # THEN only that pair is a candidate: nothing else was loaded
    assert [sorted(group) for group in groups] == [pair]


def test_company_duplicates_on_mariadb(api: Api) -> None:
    # GIVEN companies alike by name (accents and legal forms aside) and by domain root
    def make(name: str, domain: str | None = None) -> str:
        return str(created(api.post("/v1/companies?allow_duplicate=true",
                                    {"name": name, **({"domain": domain} if domain else {})}))["id"])

    a, b = make("Société Générale SA"), make("societe generale")
    c, d = make("Initech", "initech.com"), make("Initrode", "eu.initech.co.uk")

    # WHEN listed
    reply = api.get("/v1/companies/duplicates")

    # THEN both pairs are found with their reasons
    assert reply.status == 200, reply.raw
    found = {tuple(p["record_ids"]): p["reasons"] for p in reply.json["data"]}
    assert found == {tuple(sorted([a, b])): ["same_name"], tuple(sorted([c, d])): ["same_domain_root"]}


def test_merge_and_undo_round_trip(api: Api) -> None:
    # GIVEN two companies, a contact and a deal at the merged one, and a labelled link
    keep = created(api.post("/v1/companies", {"name": "Acme", "domain": "acme.com"}))
    gone = created(api.post("/v1/companies", {"name": "Acme Inc", "domain": "acme.io", "industry": "Tools"}))
    person = created(api.post("/v1/contacts", {"first_name": "Pat", "email": "pat@acme.io", "company_id": gone["id"]}))
    deal = created(api.post("/v1/deals", {"name": "Anvils", "company_id": gone["id"]}))
    created(api.post(f"/v1/companies/{gone['id']}/associations/contacts/{person['id']}", {"label": "Champion"}))

    # WHEN merged, taking the merged domain
    merged = api.post("/v1/companies/merge", {"keep_id": keep["id"], "merge_id": gone["id"],
                                              "fields": {"domain": "merge"}})

    # THEN everything points at the survivor, which has the merged domain
    assert merged.status == 201, merged.raw
    assert (merged.json["record"]["domain"], merged.json["record"]["industry"]) == ("acme.io", "Tools")
    assert api.get(f"/v1/contacts/{person['id']}").json["company_id"] == keep["id"]
    assert api.get(f"/v1/deals/{deal['id']}").json["company_id"] == keep["id"]
    links = api.get(f"/v1/companies/{keep['id']}/associations/contacts").json["data"]
    assert [(e["to_id"], e["label"]) for e in links] == [(person["id"], "Champion")]
    assert api.post("/v1/companies", {"name": "X", "domain": "acme.com"}).status == 201  # the old domain is free
    assert api.post("/v1/companies", {"name": "Y", "domain": "acme.io"}).status == 409

    # WHEN a company takes the survivor's freed domain, the undo must give it back: refused
    undo = api.post(f"/v1/merges/{merged.json['merge']['id']}/undo")
    assert undo.status == 409 and undo.json["type"] == "urn:crm:problem:merge-undo-unsafe"

    # GIVEN that company moves to another domain, WHEN undone THEN all is back
    taken = api.get("/v1/companies?limit=200").json["data"]
    blocker = next(c for c in taken if c["domain"] == "acme.com" and c["id"] != keep["id"])
    assert api.patch(f"/v1/companies/{blocker['id']}", {"domain": "x.example"}).status == 200
    undo = api.post(f"/v1/merges/{merged.json['merge']['id']}/undo")
    assert undo.status == 200, undo.raw
    assert api.get(f"/v1/companies/{keep['id']}").json["domain"] == "acme.com"
    assert api.get(f"/v1/companies/{gone['id']}").json["domain"] == "acme.io"
    assert api.get(f"/v1/contacts/{person['id']}").json["company_id"] == gone["id"]
    assert api.get(f"/v1/deals/{deal['id']}").json["company_id"] == gone["id"]
    assert [e["to_id"] for e in api.get(f"/v1/companies/{gone['id']}/associations/contacts").json["data"]] == [
        person["id"]]


def test_another_workspace_cannot_merge_or_undo(api: Api, other_api: Api) -> None:
    # GIVEN two contacts and a merge in this workspace
    a, b, c, d = (created(api.post("/v1/contacts", {"first_name": n})) for n in "abcd")
    merge = created(api.post("/v1/contacts/merge", {"keep_id": a["id"], "merge_id": b["id"]}))["merge"]

    # WHEN the other workspace tries THEN it finds nothing, and nothing changes
    assert other_api.post("/v1/contacts/merge", {"keep_id": c["id"], "merge_id": d["id"]}).status == 404
    assert other_api.post(f"/v1/merges/{merge['id']}/undo").status == 404
    assert other_api.get("/v1/merges").json["data"] == []
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        assert uow.session.get(Merge, merge["id"]).undone_at is None  # type: ignore[union-attr]
        assert uow.session.get(Contact, d["id"]).archived_at is None  # type: ignore[union-attr]
        assert uow.session.scalar(select(Company.id).limit(1)) is None
