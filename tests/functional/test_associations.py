"""Associations over HTTP: link/unlink with labels and a primary flag, lists by type, batches, archive
hiding links (and restore bringing them back), record-level visibility, tenancy, nothing half-written."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from functions.associations.models import Association
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from shared.context import system_scope
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite
from tiers.invoke import invoke_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"
FIRST, SECOND = "01JAAAAAAAAAAAAAAAAAAAAAAA", "01JBBBBBBBBBBBBBBBBBBBBBBB"
ENTRY_FIELDS = {"id", "to_object", "to_id", "label", "is_primary", "created_at"}


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    return reply.json  # type: ignore[no-any-return]


def contact(api: Api, **fields: Any) -> str:
    return str(created(api.post("/v1/contacts", {"first_name": "Pat", **fields}))["id"])


def company(api: Api, **fields: Any) -> str:
    return str(created(api.post("/v1/companies", {"name": "Acme", **fields}))["id"])


def links(api: Api, path: str) -> list[dict[str, Any]]:
    reply = api.get(path)
    assert reply.status == 200, reply.raw
    return reply.json["data"]  # type: ignore[no-any-return]


def stored(api: Api) -> list[tuple[str, str, str, str, str, bool]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(Association).order_by(Association.id))
        return [(r.from_type, r.from_id, r.to_type, r.to_id, r.label, r.is_primary) for r in rows]


def events(api: Api) -> list[tuple[str, dict[str, Any]]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(OutboxEvent).where(OutboxEvent.object_type == "associations")
                                   .order_by(OutboxEvent.id))
        return [(e.event_type, e.payload["data"]["association"]) for e in rows]


# ---- link and list -----------------------------------------------------------------------------------------
def test_linking_answers_201_with_the_link_seen_from_the_record(api: Api) -> None:
    # GIVEN a contact and a company
    person, acme = contact(api), company(api)

    # WHEN the contact is linked to the company with a label
    reply = api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": "  decision   maker "})

    # THEN the answer is 201 with the link from the contact's side, the label trimmed
    link = created(reply)
    assert set(link) == ENTRY_FIELDS
    assert (link["to_object"], link["to_id"], link["label"], link["is_primary"]) == (
        "companies", acme, "decision maker", False)
    # AND both records list it, each seeing the other end
    assert links(api, f"/v1/contacts/{person}/associations/companies") == [link]
    [back] = links(api, f"/v1/companies/{acme}/associations/contacts")
    assert (back["id"], back["to_object"], back["to_id"]) == (link["id"], "contacts", person)
    # AND one association.created event says who is linked to whom
    assert events(api) == [("association.created", {**{k: v for k, v in link.items() if k != "id"},
                                                    "id": link["id"], "from_object": "contacts",
                                                    "from_id": person})]


def test_linking_again_with_the_same_label_is_idempotent(api: Api) -> None:
    # GIVEN a labelled link
    person, acme = contact(api), company(api)
    first = created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": "Billing contact"}))

    # WHEN it is made again, from the other side, spelled differently, and once without a body (unlabelled)
    again = api.post(f"/v1/companies/{acme}/associations/contacts/{person}", {"label": "billing  CONTACT"})
    bare = api.post(f"/v1/contacts/{person}/associations/companies/{acme}")

    # THEN the same link answers 200; the unlabelled one is a second link (201)
    assert again.status == 200 and again.json["id"] == first["id"] and again.json["label"] == "Billing contact"
    assert created(bare)["label"] == ""
    assert len(stored(api)) == 2
    assert [kind for kind, _ in events(api)] == ["association.created", "association.created"]


def test_primary_is_one_link_per_record_and_type(api: Api) -> None:
    # GIVEN a company and two contacts
    acme, ann, bob = company(api), contact(api), contact(api)

    # WHEN Ann is made its primary contact, then Bob
    created(api.post(f"/v1/companies/{acme}/associations/contacts/{ann}", {"is_primary": True}))
    created(api.post(f"/v1/companies/{acme}/associations/contacts/{bob}", {"is_primary": True}))

    # THEN only Bob is primary
    listed = {e["to_id"]: e["is_primary"] for e in links(api, f"/v1/companies/{acme}/associations/contacts")}
    assert listed == {ann: False, bob: True}
    # AND asking for "not primary" clears it (an update event, no new link)
    cleared = api.post(f"/v1/companies/{acme}/associations/contacts/{bob}", {"is_primary": False})
    assert cleared.status == 200 and cleared.json["is_primary"] is False
    assert [kind for kind, _ in events(api)][-1] == "association.updated"
    assert len(stored(api)) == 2


def test_lists_page_with_cursors_bound_to_their_record(api: Api) -> None:
    # GIVEN a company linked to five contacts
    acme = company(api)
    people = [contact(api) for _ in range(5)]
    for person in people:
        created(api.post(f"/v1/companies/{acme}/associations/contacts/{person}"))

    # WHEN its contacts are listed two at a time
    seen: list[str] = []
    cursors: list[str] = []
    while True:
        after = f"&cursor={cursors[-1]}" if cursors else ""
        reply = api.get(f"/v1/companies/{acme}/associations/contacts?limit=2{after}")
        assert reply.status == 200, reply.raw
        seen += [e["to_id"] for e in reply.json["data"]]
        if reply.json["next_cursor"] is None:
            break
        cursors.append(reply.json["next_cursor"])

    # THEN every contact comes once, in the order linked, over three pages
    assert seen == people and len(cursors) == 2
    # AND a cursor of this list is refused for another record's list
    other = company(api, name="Other")
    reply = api.get(f"/v1/companies/{other}/associations/contacts?cursor={cursors[0]}")
    assert problem(reply, 422)["errors"][0]["field"] == "cursor"


def test_deals_show_contacts_linked_through_associations(api: Api) -> None:
    # GIVEN a deal and a contact
    deal = created(api.post("/v1/deals", {"name": "Big one"}))
    person = contact(api)

    # WHEN they are linked through the associations API, as the deal's primary contact
    created(api.post(f"/v1/deals/{deal['id']}/associations/contacts/{person}", {"is_primary": True}))

    # THEN the deal shows the contact (its body is never served stale from the cache)
    body = api.get(f"/v1/deals/{deal['id']}").json
    assert body["contact_ids"] == [person] and body["primary_contact_id"] == person
    # AND unlinking removes it again
    assert api.delete(f"/v1/contacts/{person}/associations/deals/{deal['id']}").status == 204
    assert api.get(f"/v1/deals/{deal['id']}").json["contact_ids"] == []


# ---- unlink ---------------------------------------------------------------------------------------------------
def test_unlinking_one_label_or_every_label(api: Api) -> None:
    # GIVEN a contact linked to a company three times: unlabelled, "billing", "decision maker"
    person, acme = contact(api), company(api)
    for label in ("", "billing", "decision maker"):
        created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": label}))

    # WHEN one label is removed (matched ignoring case)
    one = api.delete(f"/v1/companies/{acme}/associations/contacts/{person}?label=BILLING")

    # THEN 204, and the other two remain
    assert one.status == 204 and one.raw == b""
    assert sorted(e["label"] for e in links(api, f"/v1/contacts/{person}/associations/companies")) == [
        "", "decision maker"]
    # AND removing without a label removes the rest, each with an association.removed event
    assert api.delete(f"/v1/contacts/{person}/associations/companies/{acme}").status == 204
    assert stored(api) == []
    assert [kind for kind, _ in events(api)].count("association.removed") == 3
    # AND removing what is no longer there is a no-op
    assert api.delete(f"/v1/contacts/{person}/associations/companies/{acme}").status == 204
    assert [kind for kind, _ in events(api)].count("association.removed") == 3


# ---- bad input writes nothing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("/v1/contacts/{p}/associations/companies/{k}", {"label": "x" * 65}, 422, "label"),
    ("/v1/contacts/{p}/associations/companies/{k}", {"label": "ok", "colour": "red"}, 422, "colour"),
    ("/v1/contacts/{p}/associations/companies/{k}", {"is_primary": "yes"}, 422, "is_primary"),
    ("/v1/contacts/{p}/associations/widgets/{k}", {}, 422, "to_object"),
    ("/v1/contacts/{p}/associations/contacts/{p}", {}, 422, "to_id"),
    ("/v1/contacts/{p}/associations/companies/01JZZZZZZZZZZZZZZZZZZZZZZZ", {}, 404, None),
    ("/v1/contacts/01JZZZZZZZZZZZZZZZZZZZZZZZ/associations/companies/{k}", {}, 404, None),
    ("/v1/contacts/{p}/associations/contacts/{k}", {}, 404, None),  # a company's id named as a contact
])
def test_bad_links_are_refused_and_write_nothing(api: Api, path: str, body: Any, status: int,
                                                 field: str | None) -> None:
    # GIVEN a contact and a company
    person, acme = contact(api), company(api)

    # WHEN a bad link is asked for
    reply = api.post(path.format(p=person, k=acme), body)

    # THEN it is refused with a problem naming the field, and nothing is stored or emitted
    body_ = problem(reply, status)
    if field is not None:
        assert field in {e["field"] for e in body_["errors"]}
    assert stored(api) == [] and events(api) == []


def test_listing_an_unknown_type_or_record_is_refused(api: Api) -> None:
    # GIVEN a contact WHEN lists of an unknown type, of an unknown record, with a bad limit are asked for
    person = contact(api)
    # THEN 422, 404 and 422
    assert problem(api.get(f"/v1/contacts/{person}/associations/widgets"), 422)["errors"][0]["field"] == "to_object"
    problem(api.get("/v1/contacts/01JZZZZZZZZZZZZZZZZZZZZZZZ/associations/companies"), 404)
    problem(api.get(f"/v1/contacts/{person}/associations/companies?limit=0"), 422)


# ---- archive hides, restore shows --------------------------------------------------------------------------------
def test_archiving_a_record_hides_its_links_and_restoring_brings_them_back(api: Api) -> None:
    # GIVEN a contact linked to two companies
    person, acme, globex = contact(api), company(api), company(api, name="Globex")
    for other in (acme, globex):
        created(api.post(f"/v1/contacts/{person}/associations/companies/{other}", {"label": "customer"}))

    # WHEN one company is archived
    assert api.delete(f"/v1/companies/{acme}").status == 204

    # THEN the contact lists only the other one, and the archived company's own list is 404
    assert [e["to_id"] for e in links(api, f"/v1/contacts/{person}/associations/companies")] == [globex]
    problem(api.get(f"/v1/companies/{acme}/associations/contacts"), 404)
    # AND the link itself was not deleted
    assert len(stored(api)) == 2
    # AND the contact itself archived: its list is 404 too
    assert api.delete(f"/v1/contacts/{person}").status == 204
    problem(api.get(f"/v1/contacts/{person}/associations/companies"), 404)
    assert links(api, f"/v1/companies/{globex}/associations/contacts") == []

    # WHEN both are restored
    assert api.post(f"/v1/contacts/{person}/restore").status == 200
    assert api.post(f"/v1/companies/{acme}/restore").status == 200

    # THEN every link is back
    assert sorted(e["to_id"] for e in links(api, f"/v1/contacts/{person}/associations/companies")) == sorted(
        [acme, globex])


def test_an_archived_record_cannot_be_linked(api: Api) -> None:
    # GIVEN an archived company
    person, acme = contact(api), company(api)
    assert api.delete(f"/v1/companies/{acme}").status == 204
    # WHEN a contact is linked to it THEN 404, nothing written
    problem(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {}), 404)
    assert stored(api) == []


# ---- visibility and tenancy ------------------------------------------------------------------------------------
def test_a_restricted_member_sees_only_links_to_records_they_may_see(
    api: Api, firebase_issuer: FirebaseTestIssuer
) -> None:
    # GIVEN a member, a company they own linked to their contact and to someone else's
    member = invite(api, firebase_issuer, "member")
    mine = company(api, owner_id=member.owner_user_id)
    theirs, others = contact(api, owner_id=member.owner_user_id), contact(api, owner_id=api.owner_user_id)
    for person in (theirs, others):
        created(api.post(f"/v1/companies/{mine}/associations/contacts/{person}"))
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200

    # WHEN the member lists the company's contacts
    listed = [e["to_id"] for e in links(member, f"/v1/companies/{mine}/associations/contacts")]

    # THEN only their own contact is there (the admin key sees both)
    assert listed == [theirs]
    assert len(links(api, f"/v1/companies/{mine}/associations/contacts")) == 2
    # AND they can neither list nor link nor unlink the invisible contact
    problem(member.get(f"/v1/contacts/{others}/associations/companies"), 404)
    problem(member.post(f"/v1/companies/{mine}/associations/contacts/{others}", {"label": "x"}), 404)
    problem(member.delete(f"/v1/companies/{mine}/associations/contacts/{others}"), 404)
    assert len(stored(api)) == 2


def test_other_workspaces_cannot_see_or_change_links(api: Api, other_api: Api) -> None:
    # GIVEN a link in this workspace and a contact in another
    person, acme = contact(api), company(api)
    created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": "owner"}))
    stranger = contact(other_api)

    # WHEN the other workspace lists, links, unlinks and batches across
    listed = other_api.get(f"/v1/contacts/{person}/associations/companies")
    linked = other_api.post(f"/v1/contacts/{stranger}/associations/companies/{acme}")
    removed = other_api.delete(f"/v1/contacts/{person}/associations/companies/{acme}")
    batch = other_api.post("/v1/associations/batch/archive", {"inputs": [
        {"from_object": "contacts", "from_id": person, "to_object": "companies", "to_id": acme}]})

    # THEN every record of this workspace is unknown there, and the link is untouched
    for reply in (listed, linked, removed):
        problem(reply, 404)
    assert batch.status == 207 and batch.json["results"][0]["status"] == 404
    assert len(stored(api)) == 1 and stored(other_api) == []


# ---- batch ------------------------------------------------------------------------------------------------------
def test_batch_create_links_each_input_on_its_own(api: Api) -> None:
    # GIVEN two contacts and a company
    ann, bob, acme = contact(api), contact(api), company(api)
    link = {"from_object": "contacts", "to_object": "companies", "to_id": acme}

    # WHEN a batch links both, repeats one, names an unknown contact and sends junk
    reply = api.post("/v1/associations/batch/create", {"inputs": [
        {**link, "from_id": ann, "label": "billing"},
        {**link, "from_id": bob, "is_primary": True},
        {**link, "from_id": ann, "label": "BILLING"},
        {**link, "from_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"},
        {**link, "from_id": ann, "label": "y" * 65},
        "junk",
    ]})

    # THEN 207, each input answered by itself
    assert reply.status == 207, reply.raw
    results = reply.json["results"]
    assert [(r["index"], r["status"], r["outcome"]) for r in results] == [
        (0, 201, "created"), (1, 201, "created"), (2, 200, "existing"), (3, 404, "error"), (4, 422, "error"),
        (5, 422, "error")]
    assert results[0]["association"]["from_id"] == ann and results[2]["association"]["id"] == results[0][
        "association"]["id"]
    assert results[1]["association"]["is_primary"] is True
    assert {e["field"] for e in results[4]["problem"]["errors"]} == {"inputs.4.label"}
    # AND only the good inputs were written
    assert len(stored(api)) == 2


def test_batch_archive_removes_links(api: Api) -> None:
    # GIVEN two labelled links
    ann, acme = contact(api), company(api)
    for label in ("billing", "owner"):
        created(api.post(f"/v1/contacts/{ann}/associations/companies/{acme}", {"label": label}))

    # WHEN a batch removes one label, then everything left
    reply = api.post("/v1/associations/batch/archive", {"inputs": [
        {"from_object": "companies", "from_id": acme, "to_object": "contacts", "to_id": ann, "label": "Billing"},
        {"from_object": "contacts", "from_id": ann, "to_object": "companies", "to_id": acme},
    ]})

    # THEN 200, with how many each removed
    assert reply.status == 200, reply.raw
    assert [(r["outcome"], r["removed"]) for r in reply.json["results"]] == [("removed", 1), ("removed", 1)]
    assert stored(api) == []


def test_batches_are_limited_to_100_inputs(api: Api) -> None:
    # GIVEN 101 inputs WHEN sent THEN 422 naming the inputs, nothing written
    one = {"from_object": "contacts", "from_id": "A", "to_object": "companies", "to_id": "B"}
    assert problem(api.post("/v1/associations/batch/create", {"inputs": [one] * 101}), 422)
    assert problem(api.post("/v1/associations/batch/archive", {"inputs": []}), 422)
    assert stored(api) == []


# ---- the sample events with two real records ------------------------------------------------------------------
@pytest.mark.parametrize(("name", "status"), [
    ("associations_create_contacts_labelled", 201), ("associations_create_companies_labelled", 201),
    ("associations_create_deals_labelled", 201), ("associations_remove_contacts_by_ids", 204),
    ("associations_remove_companies_by_ids", 204), ("associations_remove_deals_by_ids", 204),
    ("associations_list_deals_by_id", 200), ("associations_batch_create_two", 200),
    ("associations_batch_archive_by_ids", 200),
])
def test_sample_events_succeed_with_real_records(api: Api, name: str, status: int) -> None:
    # GIVEN the event with the two placeholders replaced by real records of the types it names
    text = (EVENTS / f"{name}.json").read_text()
    event = json.loads(text)
    resource = event["resource"]
    first_type = resource.split("/")[2] if "{record_id}" in resource else "contacts"
    second_type = (event["pathParameters"] or {}).get("to_object", "companies")
    real = {"contacts": lambda: contact(api), "companies": lambda: company(api),
            "deals": lambda: created(api.post("/v1/deals", {"name": "Sample"}))["id"]}
    event = json.loads(text.replace(FIRST, real[first_type]()).replace(SECOND, real[second_type]()))

    # WHEN it is invoked on its handler
    result = invoke_handler(_handler(name), event, api_key=api.api_key)

    # THEN it succeeds
    assert result["statusCode"] == status, result.get("body")


def _handler(name: str) -> str:
    for suffix in ("_labelled", "_by_ids", "_by_id", "_two"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    raise AssertionError(name)


def test_no_row_without_its_event(api: Api) -> None:
    # GIVEN a few link and unlink calls
    person, acme = contact(api), company(api)
    created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": "a"}))
    created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": "b"}))
    assert api.delete(f"/v1/contacts/{person}/associations/companies/{acme}?label=a").status == 204

    # WHEN rows and events are counted THEN each live row has its created event, each gone one its removed one
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        count = uow.session.scalar(select(func.count()).select_from(Association))
    kinds = [kind for kind, _ in events(api)]
    assert count == 1 and kinds == ["association.created", "association.created", "association.removed"]


def test_a_link_made_through_the_associations_api_moves_the_deals_etag(api: Api) -> None:
    # GIVEN a deal read once (its body lists contact_ids) and a contact
    deal = api.post("/v1/deals", {"name": "Renewal"}).json
    first = api.get(f"/v1/deals/{deal['id']}")
    contact = api.post("/v1/contacts", {"email": "buyer@example.com"}).json
    # WHEN the contact is linked to the deal through the associations API
    linked = api.post(f"/v1/deals/{deal['id']}/associations/contacts/{contact['id']}")
    assert linked.status == 201
    # THEN a conditional GET with the old ETag is not answered 304 with a stale body
    again = api.get(f"/v1/deals/{deal['id']}", headers={"If-None-Match": first.header("ETag") or ""})
    assert again.status == 200
    assert again.json["contact_ids"] == [contact["id"]]
    assert again.header("ETag") != first.header("ETag")
    # AND removing the link moves it again
    assert api.delete(f"/v1/deals/{deal['id']}/associations/contacts/{contact['id']}").status == 204
    last = api.get(f"/v1/deals/{deal['id']}", headers={"If-None-Match": again.header("ETag") or ""})
    assert last.status == 200 and last.json["contact_ids"] == []
