"""Duplicates over HTTP: a create that repeats an email/domain is 409 naming the record (single, batch),
unless the client allows the duplicate; upserts still match the canonical record; and
`GET /v1/{contacts|companies}/duplicates` lists likely pairs with a score and the reasons."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from functions.contacts.models import Contact
from layers.db.uow import UnitOfWork
from shared.context import system_scope
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    return reply.json  # type: ignore[no-any-return]


def contact_rows(api: Api) -> list[tuple[str, str | None, str | None]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return [(c.id, c.email, c.email_key) for c in uow.session.scalars(select(Contact).order_by(Contact.id))]


def pairs(api: Api, path: str) -> dict[frozenset[str], tuple[float, list[str]]]:
    reply = api.get(path)
    assert reply.status == 200, reply.raw
    return {frozenset(p["record_ids"]): (p["score"], p["reasons"]) for p in reply.json["data"]}


# ---- 409 on create unless allowed ----------------------------------------------------------------------------
def test_a_contact_with_a_known_email_is_409_naming_it_unless_allowed(api: Api) -> None:
    # GIVEN a contact
    first = created(api.post("/v1/contacts", {"email": "ann@example.com"}))

    # WHEN another is created with the same email spelled differently
    clash = api.post("/v1/contacts", {"email": "  ANN@Example.com", "first_name": "Ann"})

    # THEN 409 names the existing contact, and nothing is written
    body = problem(clash, 409)
    assert body["existing_id"] == first["id"] and body["type"] == "urn:crm:problem:unique-conflict"
    assert len(contact_rows(api)) == 1

    # WHEN the client allows the duplicate
    duplicate = created(api.post("/v1/contacts?allow_duplicate=true", {"email": "ann@example.com"}))

    # THEN it exists beside the first, which stays the canonical holder of the email
    assert duplicate["email"] == "ann@example.com"
    assert {(rid, key) for rid, _, key in contact_rows(api)} == {(first["id"], "ann@example.com"),
                                                                 (duplicate["id"], None)}
    assert problem(api.post("/v1/contacts", {"email": "ann@example.com"}), 409)["existing_id"] == first["id"]
    problem(api.post("/v1/contacts?allow_duplicate=maybe", {"email": "x@example.com"}), 422)


def test_a_company_with_a_known_domain_is_409_unless_allowed(api: Api) -> None:
    # GIVEN a company on acme.com
    first = created(api.post("/v1/companies", {"name": "Acme", "domain": "acme.com"}))

    # WHEN another is created on the same domain written as a URL
    clash = api.post("/v1/companies", {"name": "Acme Corp", "domain": "https://www.ACME.com/about"})

    # THEN 409 names the first; allowed, it is created
    assert problem(clash, 409)["existing_id"] == first["id"]
    allowed = created(api.post("/v1/companies?allow_duplicate=true", {"name": "Acme Corp", "domain": "acme.com"}))
    assert allowed["domain"] == "acme.com" and allowed["id"] != first["id"]


def test_batch_create_is_409_per_input_unless_allowed(api: Api) -> None:
    # GIVEN a contact
    first = created(api.post("/v1/contacts", {"email": "ann@example.com"}))
    inputs = [{"email": "Ann@example.com"}, {"email": "bob@example.com"}]

    # WHEN a batch repeats its email beside a new one
    reply = api.post("/v1/contacts/batch/create", {"inputs": inputs})

    # THEN the repeat fails alone with 409 naming the first; the other is created
    assert reply.status == 207, reply.raw
    failed, made = reply.json["results"]
    assert failed["status"] == 409 and failed["problem"]["existing_id"] == first["id"]
    assert made["status"] == 201

    # WHEN the same batch allows duplicates
    allowed = api.post("/v1/contacts/batch/create?allow_duplicate=true", {"inputs": inputs})

    # THEN both are created (bob twice now, ann twice)
    assert allowed.status == 200, allowed.raw
    assert sorted(email for _, email, _ in contact_rows(api)) == ["ann@example.com"] * 2 + ["bob@example.com"] * 2


def test_upsert_matches_the_canonical_record_not_a_deliberate_duplicate(api: Api) -> None:
    # GIVEN a contact and a deliberate duplicate of it
    first = created(api.post("/v1/contacts", {"email": "ann@example.com", "first_name": "Ann"}))
    duplicate = created(api.post("/v1/contacts?allow_duplicate=true", {"email": "ann@example.com"}))

    # WHEN a batch upsert names the email
    reply = api.post("/v1/contacts/batch/upsert", {"inputs": [{"email": "ANN@example.com", "job_title": "CTO"}]})

    # THEN it updates the canonical record, and the duplicate is untouched
    assert reply.status == 200, reply.raw
    [result] = reply.json["results"]
    assert (result["outcome"], result["record"]["id"], result["record"]["job_title"]) == (
        "updated", first["id"], "CTO")
    assert api.get(f"/v1/contacts/{duplicate['id']}").json["job_title"] is None


# ---- the duplicates list ---------------------------------------------------------------------------------------
def test_contact_duplicates_come_with_reasons_surest_first(api: Api) -> None:
    # GIVEN contacts that look alike in each way the rules know, and one that does not
    acme = created(api.post("/v1/companies", {"name": "Acme", "domain": "acme.com"}))["id"]

    def make(**fields: Any) -> str:
        body = {"first_name": f"Person {len(made)}", **fields}  # names differ unless a test says otherwise
        made.append(str(created(api.post("/v1/contacts?allow_duplicate=true", body))["id"]))
        return made[-1]

    made: list[str] = []

    same_a, same_b = make(email="dup@example.com"), make(email="DUP@example.com")
    gmail_a, gmail_b = make(email="ann.lee+crm@gmail.com"), make(email="annlee@gmail.com")
    name_a = make(first_name="Bob", last_name="Stone", company_id=acme)
    name_b = make(first_name="bob", last_name="STONE", company_id=acme)
    local_a, local_b = make(email="j.smith@acme.com", company_id=acme), make(email="jsmith@acme.io", company_id=acme)
    phone_a, phone_b = make(phone="+44 20 7946 0958"), make(phone="020 7946 0958")
    make(first_name="Unique", email="unique@example.com", phone="+1 555 0199")

    # WHEN the duplicates are listed
    found = pairs(api, "/v1/contacts/duplicates")

    # THEN each pair is there once with its reason, and nothing else
    assert found == {
        frozenset({same_a, same_b}): (0.95, ["same_email"]),
        frozenset({gmail_a, gmail_b}): (0.85, ["similar_email"]),
        frozenset({name_a, name_b}): (0.8, ["same_name_and_company"]),
        frozenset({local_a, local_b}): (0.7, ["same_local_part_at_company"]),
        frozenset({phone_a, phone_b}): (0.6, ["same_phone"]),
    }
    # AND the surest pairs come first; each pair carries both records
    reply = api.get("/v1/contacts/duplicates")
    scores = [p["score"] for p in reply.json["data"]]
    assert scores == sorted(scores, reverse=True)
    first = reply.json["data"][0]
    assert [r["id"] for r in first["records"]] == first["record_ids"] == sorted(first["record_ids"])
    # AND min_score leaves out the weaker ones
    assert set(pairs(api, "/v1/contacts/duplicates?min_score=0.8")) == {
        frozenset({same_a, same_b}), frozenset({gmail_a, gmail_b}), frozenset({name_a, name_b})}


def test_duplicates_page_with_cursors_and_leave_out_archived_records(api: Api) -> None:
    # GIVEN five pairs of contacts sharing a phone number, one pair with an archived half
    ids = []
    for i in range(5):
        phone = f"+1 555 010{i} 77"
        ids.append([created(api.post("/v1/contacts", {"first_name": f"P{i}", "phone": phone}))["id"]
                    for _ in range(2)])
    assert api.delete(f"/v1/contacts/{ids[4][0]}").status == 204

    # WHEN they are listed two pairs at a time
    seen: list[list[str]] = []
    cursor = None
    while True:
        reply = api.get("/v1/contacts/duplicates?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200, reply.raw
        seen += [p["record_ids"] for p in reply.json["data"]]
        cursor = reply.json["next_cursor"]
        if cursor is None:
            break

    # THEN the four live pairs come once each; the archived record's pair is not there
    assert sorted(seen) == sorted(sorted(pair) for pair in ids[:4])
    # AND a cursor is bound to its list
    first_cursor = api.get("/v1/contacts/duplicates?limit=1").json["next_cursor"]
    problem(api.get(f"/v1/contacts/duplicates?limit=1&min_score=0.5&cursor={first_cursor}"), 422)
    problem(api.get(f"/v1/companies/duplicates?cursor={first_cursor}"), 422)
    problem(api.get("/v1/contacts/duplicates?min_score=2"), 422)


def test_company_duplicates_by_name_domain_and_domain_root(api: Api) -> None:
    # GIVEN companies alike by name, by domain root, by domain, and one unlike any
    def make(name: str, domain: str | None = None) -> str:
        body = {"name": name, **({"domain": domain} if domain else {})}
        return str(created(api.post("/v1/companies?allow_duplicate=true", body))["id"])

    acme_inc, acme = make("Acme, Inc.", "acme.com"), make("ACME", "acme.co.uk")
    globex_a, globex_b = make("Globex GmbH"), make("globex")
    initech_a, initech_b = make("Initech", "initech.com"), make("Initrode", "initech.com")
    make("Umbrella", "umbrella.org")

    # WHEN listed
    found = pairs(api, "/v1/companies/duplicates")

    # THEN each pair has its reasons
    assert found == {
        frozenset({acme_inc, acme}): (0.9, ["same_name", "same_domain_root"]),
        frozenset({globex_a, globex_b}): (0.75, ["same_name"]),
        frozenset({initech_a, initech_b}): (0.95, ["same_domain"]),
    }


def test_duplicates_respect_tenancy_and_visibility(api: Api, other_api: Api, firebase_issuer: FirebaseTestIssuer
                                                   ) -> None:
    # GIVEN two contacts sharing a phone here (one owned by a member), and the same numbers in another workspace
    member = invite(api, firebase_issuer, "member")
    mine = created(api.post("/v1/contacts", {"first_name": "A", "phone": "+1 555 0100 200",
                                             "owner_id": member.owner_user_id}))["id"]
    theirs = created(api.post("/v1/contacts", {"first_name": "B", "phone": "+1 555 0100 200",
                                               "owner_id": api.owner_user_id}))["id"]
    elsewhere = created(other_api.post("/v1/contacts", {"first_name": "C", "phone": "+1 555 0100 200"}))["id"]

    # WHEN each lists duplicates
    # THEN this workspace has its pair only; the other has none (one record is no pair)
    assert set(pairs(api, "/v1/contacts/duplicates")) == {frozenset({mine, theirs})}
    assert pairs(other_api, "/v1/contacts/duplicates") == {}
    assert elsewhere not in api.get("/v1/contacts/duplicates").raw.decode()
    # AND a member limited to their own records sees no pair with a record hidden from them
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200
    assert pairs(member, "/v1/contacts/duplicates") == {}
