"""Merges over HTTP: field choice, links and references moved, the merged record archived with a pointer,
history and events, undo (and when it is refused), the merges list, tenancy, nothing half-written."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from functions.merges.models import Merge
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.records.history import FieldHistory
from shared.clock import utcnow
from shared.context import system_scope
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite
from tiers.invoke import invoke_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"
FIRST, SECOND = "01JAAAAAAAAAAAAAAAAAAAAAAA", "01JBBBBBBBBBBBBBBBBBBBBBBB"


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def problem(reply: Reply, status: int, slug: str | None = None) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    if slug is not None:
        assert reply.json["type"] == f"urn:crm:problem:{slug}", reply.json
    return reply.json  # type: ignore[no-any-return]


def contact(api: Api, **fields: Any) -> dict[str, Any]:
    return created(api.post("/v1/contacts", {"first_name": "Pat", **fields}))


def company(api: Api, **fields: Any) -> dict[str, Any]:
    return created(api.post("/v1/companies", {"name": "Acme", **fields}))


def get(api: Api, path: str) -> dict[str, Any]:
    reply = api.get(path)
    assert reply.status == 200, reply.raw
    return reply.json  # type: ignore[no-any-return]


def event_types(api: Api, record_id: str) -> list[str]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(OutboxEvent).where(OutboxEvent.record_id == record_id)
                                   .order_by(OutboxEvent.id))
        return [e.event_type for e in rows]


def history(api: Api, record_id: str) -> list[tuple[str, str, Any, Any]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(FieldHistory).where(FieldHistory.record_id == record_id)
                                   .order_by(FieldHistory.id))
        return [(h.action, h.field, h.old_value, h.new_value) for h in rows]


def merge_rows(api: Api) -> list[Merge]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return list(uow.session.scalars(select(Merge)))


def linked(api: Api, path: str) -> list[str]:
    return [e["to_id"] for e in get(api, path)["data"]]


# ---- merging contacts ------------------------------------------------------------------------------------------
def test_merge_keeps_the_kept_values_and_fills_its_empty_fields(api: Api) -> None:
    # GIVEN two records of one person, each knowing something the other does not
    keep = contact(api, first_name="Ann", last_name="Lee", email="ann@example.com", tags=["vip"])
    gone = contact(api, first_name="Anne", email="ann.lee@work.example", phone="+1 555 0100", job_title="CTO",
                   tags=["old"])

    # WHEN the second is merged into the first without choices
    reply = api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]})

    # THEN 201: the survivor kept its values and took the merged one's where it had none
    body = created(reply)
    survivor = body["record"]
    assert (survivor["first_name"], survivor["last_name"], survivor["email"], survivor["tags"]) == (
        "Ann", "Lee", "ann@example.com", ["vip"])
    assert (survivor["phone"], survivor["job_title"]) == ("+1 555 0100", "CTO")
    assert get(api, f"/v1/contacts/{keep['id']}") == survivor
    # AND the merge says what changed, and where it lives
    merge = body["merge"]
    assert reply.header("Location") == f"/v1/merges/{merge['id']}"
    assert merge["fields"] == {"phone": {"old": None, "new": "+1 555 0100"}, "job_title": {"old": None, "new": "CTO"}}
    assert (merge["survivor_id"], merge["merged_id"], merge["object"], merge["undone_at"]) == (
        keep["id"], gone["id"], "contacts", None)
    # AND the merged record is archived, pointing at the survivor
    problem(api.get(f"/v1/contacts/{gone['id']}"), 404)
    archived = get(api, f"/v1/contacts/{gone['id']}?include_archived=true")
    assert archived["merged_into_id"] == keep["id"] and archived["archived_at"] is not None


def test_chosen_fields_win_and_the_survivor_takes_the_merged_email(api: Api) -> None:
    # GIVEN two contacts with different emails
    keep = contact(api, first_name="Ann", email="ann@home.example")
    gone = contact(api, first_name="Anne", email="ann@work.example")

    # WHEN merged choosing the merged record's email and first name
    body = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"],
                                                   "fields": {"email": "merge", "first_name": "merge"}}))

    # THEN the survivor has them (the merged record gave up the email first)
    assert (body["record"]["email"], body["record"]["first_name"]) == ("ann@work.example", "Anne")
    # AND the email now belongs to the survivor: a new contact with it is 409 naming the survivor
    assert problem(api.post("/v1/contacts", {"email": "ann@work.example"}), 409)["existing_id"] == keep["id"]
    # AND the survivor's old email is free again
    contact(api, email="ann@home.example")


def test_keeping_a_deliberate_duplicate_makes_it_the_email_holder(api: Api) -> None:
    # GIVEN a contact and a deliberate duplicate of it (which holds no claim on the email)
    canonical = contact(api, email="ann@example.com")
    duplicate = created(api.post("/v1/contacts?allow_duplicate=true", {"email": "ann@example.com"}))

    # WHEN the canonical record is merged into the duplicate
    merge = created(api.post("/v1/contacts/merge", {"keep_id": duplicate["id"], "merge_id": canonical["id"]}))

    # THEN the survivor holds the email now: a new contact with it is 409 naming the survivor
    assert problem(api.post("/v1/contacts", {"email": "ann@example.com"}), 409)["existing_id"] == duplicate["id"]

    # WHEN undone THEN the canonical record holds it again
    assert api.post(f"/v1/merges/{merge['merge']['id']}/undo").status == 200
    assert problem(api.post("/v1/contacts", {"email": "ann@example.com"}), 409)["existing_id"] == canonical["id"]


def test_custom_fields_merge_key_by_key(api: Api) -> None:
    # GIVEN two custom fields and two contacts with some values each
    for key in ("tier", "region"):
        created(api.post("/v1/fields", {"object_type": "contacts", "key": key, "label": key.title(), "type": "text"}))
    keep = contact(api, custom_fields={"tier": "gold"})
    gone = contact(api, custom_fields={"tier": "silver", "region": "eu"})

    # WHEN merged, keeping the kept tier by default and filling the region
    body = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}))

    # THEN the survivor has both, its own tier first
    assert body["record"]["custom_fields"] == {"tier": "gold", "region": "eu"}
    assert body["merge"]["fields"] == {"custom_fields.region": {"old": None, "new": "eu"}}

    # WHEN another pair is merged choosing the merged tier
    keep2, gone2 = contact(api, custom_fields={"tier": "gold"}), contact(api, custom_fields={"tier": "bronze"})
    body2 = created(api.post("/v1/contacts/merge", {"keep_id": keep2["id"], "merge_id": gone2["id"],
                                                    "fields": {"custom_fields.tier": "merge"}}))
    # THEN it wins
    assert body2["record"]["custom_fields"] == {"tier": "bronze"}


def test_links_move_to_the_survivor_with_the_primary_flag(api: Api) -> None:
    # GIVEN a deal whose primary contact is the record to merge, and which also has the survivor as contact,
    # and a company linked only to the merged record
    keep, gone = contact(api, email="keep@example.com"), contact(api, email="gone@example.com")
    deal = created(api.post("/v1/deals", {"name": "Deal", "contact_ids": [keep["id"], gone["id"]],
                                          "primary_contact_id": gone["id"]}))
    acme = company(api)
    created(api.post(f"/v1/contacts/{gone['id']}/associations/companies/{acme['id']}", {"label": "buyer"}))

    # WHEN merged
    merge = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}))["merge"]

    # THEN the survivor has the company link and is the deal's (only, primary) contact
    assert linked(api, f"/v1/contacts/{keep['id']}/associations/companies") == [acme["id"]]
    assert linked(api, f"/v1/companies/{acme['id']}/associations/contacts") == [keep["id"]]
    deal_now = get(api, f"/v1/deals/{deal['id']}")
    assert (deal_now["contact_ids"], deal_now["primary_contact_id"]) == ([keep["id"]], keep["id"])
    assert merge["moved"]["associations"] == 2

    # WHEN the merge is undone
    undone = api.post(f"/v1/merges/{merge['id']}/undo")

    # THEN the links are where they were, the primary flag too
    assert undone.status == 200, undone.raw
    assert linked(api, f"/v1/contacts/{gone['id']}/associations/companies") == [acme["id"]]
    assert linked(api, f"/v1/contacts/{keep['id']}/associations/companies") == []
    deal_back = get(api, f"/v1/deals/{deal['id']}")
    assert (sorted(deal_back["contact_ids"]), deal_back["primary_contact_id"]) == (
        sorted([keep["id"], gone["id"]]), gone["id"])


def test_merge_writes_history_and_events_on_both_records(api: Api) -> None:
    # GIVEN two contacts
    keep, gone = contact(api, first_name="Ann"), contact(api, first_name="Anne", job_title="CTO")

    # WHEN merged
    merge = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}))["merge"]

    # THEN the merged record's history says it was merged away, the survivor's what it took and from whom
    assert ("merged", "merged_into_id", None, keep["id"]) in history(api, gone["id"])
    assert ("merged", "archived_at") in [(a, f) for a, f, _, _ in history(api, gone["id"])]
    assert ("updated", "job_title", None, "CTO") in history(api, keep["id"])
    assert ("merged", "merged_id", None, gone["id"]) in history(api, keep["id"])
    # AND events: the merged one archived, the survivor updated and then contact.merged
    assert event_types(api, gone["id"]) == ["contact.created", "contact.archived"]
    assert event_types(api, keep["id"]) == ["contact.created", "contact.updated", "contact.merged"]
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        payload = uow.session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "contact.merged")).one()
        data = payload.payload["data"]
    assert (data["merge_id"], data["survivor_id"], data["merged_id"]) == (merge["id"], keep["id"], gone["id"])
    assert data["object"]["job_title"] == "CTO"


# ---- merging companies -----------------------------------------------------------------------------------------
def test_company_merge_moves_contacts_and_deals_and_undo_moves_them_back(api: Api) -> None:
    # GIVEN two companies; the merged one has a contact (and an archived one) and a deal
    keep = company(api, name="Acme", domain="acme.com")
    gone = company(api, name="ACME Inc", domain="acme.co.uk", industry="Tools")
    staff = contact(api, company_id=gone["id"])
    former = contact(api, company_id=gone["id"])
    assert api.delete(f"/v1/contacts/{former['id']}").status == 204
    deal = created(api.post("/v1/deals", {"name": "Anvils", "company_id": gone["id"]}))

    # WHEN merged, keeping the kept domain explicitly
    body = created(api.post("/v1/companies/merge", {"keep_id": keep["id"], "merge_id": gone["id"],
                                                    "fields": {"domain": "keep"}}))

    # THEN the survivor took the industry; the contacts and the deal now belong to it
    assert (body["record"]["domain"], body["record"]["industry"]) == ("acme.com", "Tools")
    assert body["merge"]["moved"] == {"associations": 0, "contacts": 2, "deals": 1}
    assert get(api, f"/v1/contacts/{staff['id']}")["company_id"] == keep["id"]
    assert get(api, f"/v1/contacts/{former['id']}?include_archived=true")["company_id"] == keep["id"]
    assert get(api, f"/v1/deals/{deal['id']}")["company_id"] == keep["id"]
    assert [r["id"] for r in get(api, f"/v1/companies/{keep['id']}/contacts")["data"]] == [staff["id"]]
    assert "company.merged" in event_types(api, keep["id"])
    assert event_types(api, staff["id"])[-1] == "contact.updated"

    # WHEN undone
    undone = api.post(f"/v1/merges/{body['merge']['id']}/undo")

    # THEN the merged company is back with its domain, and its contacts and deal with it
    assert undone.status == 200, undone.raw
    back = get(api, f"/v1/companies/{gone['id']}")
    assert (back["domain"], back["merged_into_id"], back["archived_at"]) == ("acme.co.uk", None, None)
    assert get(api, f"/v1/companies/{keep['id']}")["industry"] is None
    assert get(api, f"/v1/contacts/{staff['id']}")["company_id"] == gone["id"]
    assert get(api, f"/v1/deals/{deal['id']}")["company_id"] == gone["id"]
    assert "company.merge_undone" in event_types(api, keep["id"])


# ---- undo --------------------------------------------------------------------------------------------------------
def test_undo_restores_both_records_and_cannot_run_twice(api: Api) -> None:
    # GIVEN a merge where the survivor took the merged email and job title
    keep = contact(api, first_name="Ann", email="ann@home.example")
    gone = contact(api, first_name="Anne", email="ann@work.example", job_title="CTO")
    before_keep = get(api, f"/v1/contacts/{keep['id']}")
    merge = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"],
                                                    "fields": {"email": "merge"}}))["merge"]

    # WHEN it is undone
    reply = api.post(f"/v1/merges/{merge['id']}/undo")

    # THEN both records are as they were (bar versions and timestamps), each with its own email
    assert reply.status == 200, reply.raw
    assert reply.json["undone_at"] is not None
    ignore = {"updated_at"}
    now_keep = get(api, f"/v1/contacts/{keep['id']}")
    assert {k: v for k, v in now_keep.items() if k not in ignore} == {
        k: v for k, v in before_keep.items() if k not in ignore}
    now_gone = get(api, f"/v1/contacts/{gone['id']}")
    assert (now_gone["email"], now_gone["job_title"], now_gone["merged_into_id"]) == ("ann@work.example", "CTO", None)
    assert problem(api.post("/v1/contacts", {"email": "ann@work.example"}), 409)["existing_id"] == gone["id"]
    assert event_types(api, keep["id"])[-1] == "contact.merge_undone"
    # AND the merge is marked undone; a second undo is refused
    assert get(api, f"/v1/merges/{merge['id']}")["undone_at"] == reply.json["undone_at"]
    problem(api.post(f"/v1/merges/{merge['id']}/undo"), 409, "merge-already-undone")


def test_undo_is_refused_after_30_days(api: Api) -> None:
    # GIVEN a merge made 31 days ago
    keep, gone = contact(api), contact(api)
    merge = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}))["merge"]
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(Merge).where(Merge.id == merge["id"]).values(
            created_at=utcnow() - timedelta(days=31)))
        uow.commit()

    # WHEN it is undone THEN 409 says it is too old, and nothing changes
    problem(api.post(f"/v1/merges/{merge['id']}/undo"), 409, "merge-undo-expired")
    problem(api.get(f"/v1/contacts/{gone['id']}"), 404)
    assert merge_rows(api)[0].undone_at is None


def test_undo_is_refused_when_it_would_lose_later_changes(api: Api) -> None:
    # GIVEN a merge that gave the survivor a job title, after which someone edited that title
    keep, gone = contact(api, first_name="Ann"), contact(api, first_name="Anne", job_title="CTO")
    merge = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}))["merge"]
    assert api.patch(f"/v1/contacts/{keep['id']}", {"job_title": "CEO"}).status == 200

    # WHEN the merge is undone THEN 409 names the field that changed, and nothing is undone
    body = problem(api.post(f"/v1/merges/{merge['id']}/undo"), 409, "merge-undo-unsafe")
    assert [e["field"] for e in body["errors"]] == ["job_title"]
    assert get(api, f"/v1/contacts/{keep['id']}")["job_title"] == "CEO"
    problem(api.get(f"/v1/contacts/{gone['id']}"), 404)

    # GIVEN another merge, after which the merged email was taken by a new contact
    keep2, gone2 = contact(api), contact(api, email="taken@example.com")
    merge2 = created(api.post("/v1/contacts/merge", {"keep_id": keep2["id"], "merge_id": gone2["id"],
                                                     "fields": {"email": "keep"}}))["merge"]
    newcomer = contact(api, email="taken@example.com")
    # WHEN undone THEN 409 names the record holding the email now
    assert problem(api.post(f"/v1/merges/{merge2['id']}/undo"), 409, "merge-undo-unsafe")["existing_id"] == newcomer[
        "id"]

    # GIVEN a third merge whose merged record was restored by hand
    keep3, gone3 = contact(api), contact(api)
    merge3 = created(api.post("/v1/contacts/merge", {"keep_id": keep3["id"], "merge_id": gone3["id"]}))["merge"]
    assert api.post(f"/v1/contacts/{gone3['id']}/restore").status == 200
    # WHEN undone THEN 409 too
    problem(api.post(f"/v1/merges/{merge3['id']}/undo"), 409, "merge-undo-unsafe")


# ---- refused merges write nothing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "status", "field"), [
    ({"keep_id": "{k}", "merge_id": "{k}"}, 422, "body"),
    ({"keep_id": "{k}", "merge_id": "{m}", "fields": {"email": "both"}}, 422, "fields.email"),
    ({"keep_id": "{k}", "merge_id": "{m}", "fields": {"id": "merge"}}, 422, "fields.id"),
    ({"keep_id": "{k}", "merge_id": "{m}", "fields": {"custom_fields.no": "merge"}}, 422, "fields.custom_fields.no"),
    ({"keep_id": "{k}"}, 422, "merge_id"),
    ({"keep_id": "{k}", "merge_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"}, 404, None),
    ({"keep_id": "{k}", "merge_id": "{a}"}, 404, None),  # already archived
])
def test_bad_merges_are_refused_and_write_nothing(api: Api, body: dict[str, Any], status: int,
                                                  field: str | None) -> None:
    # GIVEN two contacts and an archived one
    keep, gone, archived = contact(api, first_name="K"), contact(api, job_title="CTO"), contact(api)
    assert api.delete(f"/v1/contacts/{archived['id']}").status == 204
    ids = {"k": keep["id"], "m": gone["id"], "a": archived["id"]}
    sent = json.loads(json.dumps(body).replace("{k}", ids["k"]).replace("{m}", ids["m"]).replace("{a}", ids["a"]))
    events_before = event_types(api, keep["id"]) + event_types(api, gone["id"])

    # WHEN the merge is asked for
    reply = api.post("/v1/contacts/merge", sent)

    # THEN it is refused, naming the field, and neither record nor any merge row changed
    answer = problem(reply, status)
    if field is not None:
        assert field in {e["field"] for e in answer["errors"]}, answer
    assert get(api, f"/v1/contacts/{keep['id']}") == keep and get(api, f"/v1/contacts/{gone['id']}") == gone
    assert merge_rows(api) == [] and event_types(api, keep["id"]) + event_types(api, gone["id"]) == events_before


def test_a_merge_failing_late_leaves_both_records_as_they_were(api: Api) -> None:
    # GIVEN a survivor without a company, and a record at a company that has since been archived
    acme = company(api)
    keep, gone = contact(api), contact(api, company_id=acme["id"])
    assert api.delete(f"/v1/companies/{acme['id']}").status == 204

    # WHEN merged (filling the company would name an archived company) THEN 422 naming it
    problem(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}), 422)

    # AND the merged record was not archived even though that step ran first
    assert get(api, f"/v1/contacts/{gone['id']}")["archived_at"] is None
    assert merge_rows(api) == []
    # AND choosing to keep the survivor's (empty) company lets the merge through
    created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"],
                                            "fields": {"company_id": "keep"}}))


def test_a_restricted_member_may_not_merge(api: Api, firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a member limited to their own records, owning two contacts
    member = invite(api, firebase_issuer, "member")
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200
    keep, gone = (contact(api, owner_id=member.owner_user_id) for _ in range(2))

    # WHEN they merge them THEN 403: a merge moves links and references they may not see
    problem(member.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}), 403)
    assert merge_rows(api) == []


# ---- the merges list and tenancy ---------------------------------------------------------------------------------
def test_merges_are_listed_newest_first_and_filtered_by_object(api: Api) -> None:
    # GIVEN two contact merges and a company merge
    made = []
    for _ in range(2):
        keep, gone = contact(api), contact(api)
        made.append(created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}))["merge"])
    keep_c, gone_c = company(api), company(api, name="Acme Inc")
    company_merge = created(api.post("/v1/companies/merge", {"keep_id": keep_c["id"], "merge_id": gone_c["id"]}))

    # WHEN listed (one per page), and filtered
    first = get(api, "/v1/merges?limit=1")
    second = get(api, f"/v1/merges?limit=1&cursor={first['next_cursor']}")
    contacts_only = get(api, "/v1/merges?object=contacts")

    # THEN newest first, paged, and the filter keeps contacts' merges only
    assert first["data"][0]["id"] == company_merge["merge"]["id"] and second["data"][0]["id"] == made[1]["id"]
    assert [m["id"] for m in contacts_only["data"]] == [made[1]["id"], made[0]["id"]]
    assert contacts_only["data"][0]["undo_until"] > contacts_only["data"][0]["created_at"]
    problem(api.get(f"/v1/merges?object=contacts&cursor={first['next_cursor']}"), 422)
    problem(api.get("/v1/merges?object=deals"), 422)


def test_other_workspaces_cannot_merge_see_or_undo(api: Api, other_api: Api) -> None:
    # GIVEN a merge here, and two contacts here
    keep, gone = contact(api), contact(api)
    merge = created(api.post("/v1/contacts/merge", {"keep_id": keep["id"], "merge_id": gone["id"]}))["merge"]
    a, b = contact(api), contact(api)
    own = contact(other_api)

    # WHEN the other workspace merges them, merges one into its own, reads and undoes the merge
    # THEN every record and merge of this workspace is unknown there
    problem(other_api.post("/v1/contacts/merge", {"keep_id": a["id"], "merge_id": b["id"]}), 404)
    problem(other_api.post("/v1/contacts/merge", {"keep_id": own["id"], "merge_id": a["id"]}), 404)
    problem(other_api.get(f"/v1/merges/{merge['id']}"), 404)
    problem(other_api.post(f"/v1/merges/{merge['id']}/undo"), 404)
    assert get(other_api, "/v1/merges")["data"] == []
    # AND nothing here changed
    assert get(api, f"/v1/contacts/{a['id']}") == a and merge_rows(api)[0].undone_at is None


# ---- the sample events with real records ---------------------------------------------------------------------
@pytest.mark.parametrize(("name", "handler", "status"), [
    ("merges_merge_contacts_by_ids", "merges_merge_contacts", 201),
    ("merges_merge_companies_by_ids", "merges_merge_companies", 201),
    ("merges_get_by_id", "merges_get", 200),
    ("merges_undo_by_id", "merges_undo", 200),
])
def test_sample_events_succeed_with_real_records(api: Api, name: str, handler: str, status: int) -> None:
    # GIVEN the event with its placeholders replaced by two real records (or a real merge of them)
    object_type = "companies" if "companies" in name else "contacts"
    make = company if object_type == "companies" else contact
    first, second = make(api)["id"], make(api, **({"name": "Other"} if object_type == "companies" else {}))["id"]
    text = (EVENTS / f"{name}.json").read_text()
    if handler in ("merges_get", "merges_undo"):
        merge = created(api.post("/v1/contacts/merge", {"keep_id": first, "merge_id": second}))["merge"]
        event = json.loads(text.replace(FIRST, merge["id"]))
    else:
        event = json.loads(text.replace(FIRST, first).replace(SECOND, second))

    # WHEN it is invoked on its handler
    result = invoke_handler(handler, event, api_key=api.api_key)

    # THEN it succeeds
    assert result["statusCode"] == status, result.get("body")
