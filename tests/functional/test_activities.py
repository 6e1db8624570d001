"""Activities over HTTP: every kind and its rules, links to contacts/companies, completion, tenancy,
and nothing half-written on failure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from functions.activities.models import Activity
from functions.associations.models import Association
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.records.history import FieldHistory
from shared.context import system_scope
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite

PROBLEM_JSON = "application/problem+json"
PAST = "2026-01-05T09:30:00Z"
FUTURE = "2099-01-01T00:00:00Z"


@dataclass(frozen=True)
class Written:
    """What the workspace holds for activities: rows, links, history and events, as plain values."""

    activities: list[tuple[str, int]]
    links: list[tuple[str, str, str, str]]
    history: list[tuple[str, str, str]]
    events: list[tuple[str, str]]


NOTHING = Written([], [], [], [])


def written(api: Api) -> Written:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        session = uow.session
        return Written(
            activities=[(a.id, a.version) for a in session.scalars(select(Activity).order_by(Activity.id))],
            links=[(a.from_type, a.from_id, a.to_type, a.to_id) for a in session.scalars(
                select(Association).where(Association.from_type == "activities").order_by(Association.id))],
            history=[(h.record_id, h.action, h.field) for h in session.scalars(
                select(FieldHistory).where(FieldHistory.object_type == "activities").order_by(FieldHistory.id))],
            events=[(e.event_type, e.record_id) for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.object_type == "activities").order_by(OutboxEvent.id))],
        )


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    assert "Traceback" not in reply.raw.decode()
    return reply.json  # type: ignore[no-any-return]


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def create(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/activities", fields)
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def contact(api: Api, name: str = "Ada") -> str:
    reply = api.post("/v1/contacts", {"first_name": name})
    assert reply.status == 201, reply.raw
    return str(reply.json["id"])


def company(api: Api, name: str = "Acme") -> str:
    reply = api.post("/v1/companies", {"name": name})
    assert reply.status == 201, reply.raw
    return str(reply.json["id"])


# ---- kinds -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "expected"), [
    pytest.param({"kind": "note", "body": "Met at the fair"}, {"body": "Met at the fair"}, id="note"),
    pytest.param({"kind": "task", "subject": "Send the quote", "due_at": "2026-02-01T10:00:00+01:00",
                  "priority": "high"},
                 {"due_at": "2026-02-01T09:00:00Z", "priority": "high", "occurred_at": "2026-02-01T09:00:00Z",
                  "completed_at": None}, id="task"),
    pytest.param({"kind": "call", "starts_at": PAST, "duration_minutes": 15, "outcome": "connected"},
                 {"starts_at": PAST, "occurred_at": PAST, "duration_minutes": 15, "outcome": "connected"}, id="call"),
    pytest.param({"kind": "meeting", "subject": "Demo", "starts_at": FUTURE, "duration_minutes": 60},
                 {"starts_at": FUTURE, "occurred_at": FUTURE}, id="meeting"),
    pytest.param({"kind": "email", "direction": "inbound", "email_from": "Ada@Example.com",
                  "email_to": ["sales@us.example"], "subject": "Pricing?", "body": "Hi", "sent_at": PAST},
                 {"direction": "inbound", "email_from": "ada@example.com", "email_to": ["sales@us.example"],
                  "sent_at": PAST, "occurred_at": PAST}, id="email"),
])
def test_each_kind_is_created_with_its_fields(api: Api, body: dict[str, Any], expected: dict[str, Any]) -> None:
    # GIVEN a valid activity of one kind (tasks from an API key name their assignee)
    if body["kind"] == "task":
        body = {**body, "owner_id": api.owner_user_id}

    # WHEN it is created
    reply = api.post("/v1/activities", body)

    # THEN it is 201 with its fields, no links, and reading it back answers the same record
    assert reply.status == 201, reply.raw
    record = reply.json
    assert reply.header("Location") == f"/v1/activities/{record['id']}" and reply.header("ETag") == '"v1"'
    assert record["kind"] == body["kind"]
    assert {k: record[k] for k in expected} == expected
    assert record["links"] == {"contacts": [], "companies": [], "deals": []}
    assert api.get(f"/v1/activities/{record['id']}").json == record


def test_a_note_sits_on_the_timeline_where_it_was_created(api: Api) -> None:
    # GIVEN a note and an undated task
    note = create(api, kind="note", body="x")
    task = create(api, kind="task", subject="y", owner_id=api.owner_user_id)

    # WHEN they are read
    # THEN their timeline position is their creation time, and only emails have a sent_at
    assert note["occurred_at"] == note["created_at"] and note["sent_at"] is None
    assert task["occurred_at"] == task["created_at"] and task["priority"] == "normal"


@pytest.mark.parametrize(("body", "fields"), [
    pytest.param({"kind": "note"}, {"body"}, id="note-without-body"),
    pytest.param({"kind": "note", "body": "x", "due_at": FUTURE}, {"due_at"}, id="note-with-due-at"),
    pytest.param({"kind": "task", "due_at": FUTURE}, {"subject", "owner_id"}, id="task-without-subject-or-owner"),
    pytest.param({"kind": "call", "direction": "inbound"}, {"direction"}, id="call-with-direction"),
    pytest.param({"kind": "email", "subject": "x"}, {"direction"}, id="email-without-direction"),
    pytest.param({"kind": "email", "direction": "sideways"}, {"direction"}, id="unknown-direction"),
    pytest.param({"kind": "email", "direction": "inbound", "sent_at": FUTURE}, {"sent_at"}, id="sent-in-future"),
    pytest.param({"kind": "email", "direction": "inbound", "email_to": ["nope"]}, {"email_to.0"}, id="bad-email"),
    pytest.param({"kind": "meeting", "starts_at": "2026-01-05T09:30:00"}, {"starts_at"}, id="naive-time"),
    pytest.param({"kind": "call", "duration_minutes": "15"}, {"duration_minutes"}, id="duration-as-text"),
    pytest.param({"kind": "call", "duration_minutes": -1}, {"duration_minutes"}, id="negative-duration"),
    pytest.param({"kind": "sms", "body": "x"}, {"kind"}, id="unknown-kind"),
    pytest.param({"body": "x"}, {"kind"}, id="no-kind"),
    pytest.param({"kind": "note", "body": "x", "mood": "happy"}, {"mood"}, id="unknown-field"),
    pytest.param({"kind": "note", "body": "x", "occurred_at": PAST}, {"occurred_at"}, id="occurred-at-derived"),
    pytest.param({"kind": "task", "subject": "x", "priority": "urgent"}, {"priority"}, id="unknown-priority"),
    pytest.param({"kind": "note", "body": "x", "links": {"tickets": ["01JAAAAAAAAAAAAAAAAAAAAAAA"]}},
                 {"links.tickets"}, id="unknown-link-type"),
])
def test_invalid_activities_are_422_naming_the_fields_and_write_nothing(
    api: Api, body: dict[str, Any], fields: set[str]
) -> None:
    # GIVEN an activity breaking its kind's rules or the schema
    # WHEN it is posted
    reply = api.post("/v1/activities", body)

    # THEN it is a 422 naming each field at fault, and nothing is written
    problem = assert_problem(reply, 422)
    assert error_fields(problem) == fields
    assert written(api) == NOTHING


def test_a_task_from_an_api_key_needs_an_assignee_who_is_a_member(api: Api, other_api: Api) -> None:
    # GIVEN tasks naming no assignee, another workspace's member, and this workspace's member
    # WHEN they are posted with an API key
    missing = api.post("/v1/activities", {"kind": "task", "subject": "x"})
    stranger = api.post("/v1/activities", {"kind": "task", "subject": "x", "owner_id": other_api.owner_user_id})
    member = api.post("/v1/activities", {"kind": "task", "subject": "x", "owner_id": api.owner_user_id})

    # THEN only the member is accepted
    assert error_fields(assert_problem(missing, 422)) == {"owner_id"}
    assert error_fields(assert_problem(stranger, 422)) == {"owner_id"}
    assert member.status == 201 and member.json["owner_id"] == api.owner_user_id


def test_a_person_is_the_author_and_the_default_assignee(api: Api, firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a member signed in as a person
    person = invite(api, firebase_issuer, "member")

    # WHEN they log a note and a task without naming an owner
    note = person.post("/v1/activities", {"kind": "note", "body": "x"})
    task = person.post("/v1/activities", {"kind": "task", "subject": "y"})

    # THEN both are theirs
    assert note.status == 201 and note.json["owner_id"] == person.owner_user_id
    assert task.status == 201 and task.json["owner_id"] == person.owner_user_id


# ---- links -------------------------------------------------------------------------------------------
def test_links_are_stored_as_associations_and_read_back_everywhere(api: Api) -> None:
    # GIVEN two contacts and a company
    ada, bob, acme = contact(api, "Ada"), contact(api, "Bob"), company(api)

    # WHEN a call is logged against all three (a contact named twice)
    record = create(api, kind="call", starts_at=PAST,
                    links={"contacts": [bob, ada, bob], "companies": [acme]})

    # THEN the links are de-duplicated and sorted, stored as associations, and every read shows them
    links = {"contacts": sorted([ada, bob]), "companies": [acme], "deals": []}
    assert record["links"] == links
    assert sorted(written(api).links) == sorted(
        [("activities", record["id"], "contacts", ada), ("activities", record["id"], "contacts", bob),
         ("activities", record["id"], "companies", acme)])
    assert api.get(f"/v1/activities/{record['id']}").json["links"] == links
    assert api.get("/v1/activities").json["data"][0]["links"] == links
    found = api.post("/v1/activities/search", {"filter_groups": [{"filters": [
        {"property": "kind", "operator": "EQ", "value": "call"}]}]}).json["data"]
    assert [r["links"] for r in found] == [links]
    # AND the created event carries them
    assert written(api).events == [("activity.created", record["id"])]


def test_a_link_to_another_workspaces_contact_is_422_and_writes_nothing(api: Api, other_api: Api) -> None:
    # GIVEN a contact of this workspace and one of another workspace
    mine, theirs = contact(api), contact(other_api)

    # WHEN a note links to both
    reply = api.post("/v1/activities", {"kind": "note", "body": "x", "links": {"contacts": [mine, theirs]}})

    # THEN it is a 422 naming the foreign link, and no activity, link, history or event is written
    problem = assert_problem(reply, 422)
    assert problem["errors"] == [{"field": "links.contacts", "message": f"no contacts record {theirs}",
                                  "code": "reference"}]
    assert written(api) == NOTHING
    assert written(other_api) == NOTHING


def test_links_to_unknown_or_archived_records_are_422(api: Api) -> None:
    # GIVEN an archived company
    archived = company(api)
    assert api.delete(f"/v1/companies/{archived}").status == 204

    # WHEN notes link to it and to an id that does not exist
    to_archived = api.post("/v1/activities", {"kind": "note", "body": "x", "links": {"companies": [archived]}})
    to_nothing = api.post("/v1/activities", {"kind": "note", "body": "x",
                                             "links": {"contacts": ["01JAAAAAAAAAAAAAAAAAAAAAAA"]}})

    # THEN both are refused and nothing is written
    assert error_fields(assert_problem(to_archived, 422)) == {"links.companies"}
    assert error_fields(assert_problem(to_nothing, 422)) == {"links.contacts"}
    assert written(api) == NOTHING


def test_patch_replaces_the_link_types_it_names_and_records_it(api: Api) -> None:
    # GIVEN a note linked to a contact and a company
    ada, bob, acme = contact(api, "Ada"), contact(api, "Bob"), company(api)
    record = create(api, kind="note", body="x", links={"contacts": [ada], "companies": [acme]})

    # WHEN a patch names only contacts
    reply = api.patch(f"/v1/activities/{record['id']}", {"links": {"contacts": [bob]}})

    # THEN contacts are replaced, the company link is kept, the version moves and history says so
    assert reply.status == 200, reply.raw
    assert reply.json["links"] == {"contacts": [bob], "companies": [acme], "deals": []}
    assert reply.header("ETag") == '"v2"'
    assert sorted(to_id for _, _, _, to_id in written(api).links) == sorted([bob, acme])
    history = api.get(f"/v1/activities/{record['id']}/history").json["data"]
    assert history[0]["field"] == "links" and history[0]["action"] == "updated"
    assert history[0]["old_value"] == {"contacts": [ada], "companies": [acme]}
    assert history[0]["new_value"] == {"contacts": [bob], "companies": [acme]}
    # AND the same links again change nothing
    again = api.patch(f"/v1/activities/{record['id']}", {"links": {"contacts": [bob]}})
    assert again.header("ETag") == '"v2"'


def test_a_failed_link_patch_changes_nothing(api: Api, other_api: Api) -> None:
    # GIVEN a note linked to a contact
    ada = contact(api)
    record = create(api, kind="note", body="x", links={"contacts": [ada]})
    before = written(api)

    # WHEN a patch changes the body and links a foreign contact
    reply = api.patch(f"/v1/activities/{record['id']}", {"body": "y", "links": {"contacts": [contact(other_api)]}})

    # THEN it is 422 and the note, its links, history and events are as they were
    assert error_fields(assert_problem(reply, 422)) == {"links.contacts"}
    assert written(api) == before
    assert api.get(f"/v1/activities/{record['id']}").json == record


def test_an_archived_linked_record_is_hidden_from_links_and_back_on_restore(api: Api) -> None:
    # GIVEN a note linked to a contact
    ada = contact(api)
    record = create(api, kind="note", body="x", links={"contacts": [ada]})

    # WHEN the contact is archived, then restored
    api.delete(f"/v1/contacts/{ada}")
    hidden = api.get(f"/v1/activities/{record['id']}").json["links"]["contacts"]
    api.post(f"/v1/contacts/{ada}/restore")
    back = api.get(f"/v1/activities/{record['id']}").json["links"]["contacts"]

    # THEN the link is hidden while archived, not lost
    assert hidden == [] and back == [ada]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def deal(api: Api) -> dict[str, Any]:
    reply = api.post("/v1/deals", {"name": "Big one", "amount": "1000.00", "currency": "USD"})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def test_logging_an_activity_on_a_deal_moves_its_last_activity_forward(api: Api) -> None:
    # GIVEN a deal, read once (so its record is cached)
    big = deal(api)
    assert api.get(f"/v1/deals/{big['id']}").json["last_activity_at"] is None

    # WHEN a past call, then an older email, then a future meeting are logged against it
    call = create(api, kind="call", starts_at=PAST, links={"deals": [big["id"]]})
    after_call = api.get(f"/v1/deals/{big['id']}")
    create(api, kind="email", direction="inbound", sent_at="2025-01-01T00:00:00Z", links={"deals": [big["id"]]})
    after_email = api.get(f"/v1/deals/{big['id']}").json
    meeting = create(api, kind="meeting", starts_at=FUTURE, links={"deals": [big["id"]]})
    after_meeting = api.get(f"/v1/deals/{big['id']}").json

    # THEN last_activity_at is the call's time (the cached deal is not served stale, and its ETag moved),
    # an older activity does not move it back, and a future one counts as now, not as its future time
    assert call["links"]["deals"] == [big["id"]]
    assert after_call.json["last_activity_at"] == PAST and after_call.header("ETag") == '"v2"'
    assert after_email["last_activity_at"] == PAST
    assert at(meeting["created_at"]) <= at(after_meeting["last_activity_at"]) < at(FUTURE)


def test_a_deal_timeline_shows_its_activities_and_history(api: Api) -> None:
    # GIVEN a deal with a note about it
    big = deal(api)
    note = create(api, kind="note", body="Budget approved", links={"deals": [big["id"]]})

    # WHEN its timeline is read
    reply = api.get(f"/v1/deals/{big['id']}/timeline")

    # THEN the note comes first (newest), then the deal's own history, newest first
    assert reply.status == 200, reply.raw
    kinds = [e["kind"] for e in reply.json["data"]]
    assert kinds[0] == "note" and reply.json["data"][0]["id"] == note["id"]
    assert set(kinds[1:]) == {"history"} and len(kinds) > 1


# ---- updates -----------------------------------------------------------------------------------------
def test_patch_checks_the_kind_rules(api: Api) -> None:
    # GIVEN a note and an email
    note = create(api, kind="note", body="x")
    email = create(api, kind="email", direction="outbound", subject="Hello")

    # WHEN patches use another kind's field, clear a required one or try to change the kind
    foreign = api.patch(f"/v1/activities/{note['id']}", {"due_at": FUTURE})
    cleared = api.patch(f"/v1/activities/{email['id']}", {"direction": None})
    rekind = api.patch(f"/v1/activities/{note['id']}", {"kind": "task"})

    # THEN each is a 422 naming the field, and nothing changed
    assert error_fields(assert_problem(foreign, 422)) == {"due_at"}
    assert error_fields(assert_problem(cleared, 422)) == {"direction"}
    assert error_fields(assert_problem(rekind, 422)) == {"kind"}
    assert api.get(f"/v1/activities/{note['id']}").json == note


def test_moving_a_tasks_due_time_moves_it_on_the_timeline(api: Api) -> None:
    # GIVEN an undated task
    task = create(api, kind="task", subject="x", owner_id=api.owner_user_id)

    # WHEN it gets a due time, then loses it
    dated = api.patch(f"/v1/activities/{task['id']}", {"due_at": FUTURE}).json
    undated = api.patch(f"/v1/activities/{task['id']}", {"due_at": None}).json

    # THEN occurred_at follows the due time, and falls back to the creation time
    assert dated["occurred_at"] == FUTURE
    assert undated["occurred_at"] == task["created_at"]


def test_an_emails_sent_at_is_its_timeline_position(api: Api) -> None:
    # GIVEN a logged email
    email = create(api, kind="email", direction="inbound")

    # WHEN its sent time is corrected
    reply = api.patch(f"/v1/activities/{email['id']}", {"sent_at": PAST})

    # THEN sent_at and occurred_at both say so
    assert reply.json["sent_at"] == PAST and reply.json["occurred_at"] == PAST


def test_batch_upsert_is_refused_for_activities(api: Api) -> None:
    # GIVEN activities have no unique property
    # WHEN a batch upsert is posted
    reply = api.post("/v1/activities/batch/upsert", {"inputs": [{"kind": "note", "body": "x"}]})

    # THEN it is a 422 pointing at create/update, and nothing is written
    assert_problem(reply, 422)
    assert written(api) == NOTHING


def test_batch_create_checks_each_input_on_its_own(api: Api) -> None:
    # GIVEN one valid and one invalid note
    # WHEN they are batch-created
    reply = api.post("/v1/activities/batch/create", {"inputs": [{"kind": "note", "body": "x"}, {"kind": "note"}]})

    # THEN the valid one is created and the other fails with its field named
    assert reply.status == 207
    results = reply.json["results"]
    assert results[0]["status"] == 201
    assert results[1]["status"] == 422 and error_fields(results[1]["problem"]) == {"inputs.1.body"}
    assert len(written(api).activities) == 1


# ---- complete / reopen -------------------------------------------------------------------------------
def test_complete_and_reopen_a_task(api: Api) -> None:
    # GIVEN an open task
    task = create(api, kind="task", subject="x", owner_id=api.owner_user_id)

    # WHEN it is completed twice, then reopened
    done = api.post(f"/v1/activities/{task['id']}/complete")
    again = api.post(f"/v1/activities/{task['id']}/complete")
    reopened = api.post(f"/v1/activities/{task['id']}/reopen")

    # THEN completing sets completed_at once (a repeat keeps it), and reopening clears it
    assert done.status == 200 and done.json["completed_at"] is not None and done.header("ETag") == '"v2"'
    assert again.json["completed_at"] == done.json["completed_at"] and again.header("ETag") == '"v2"'
    assert reopened.json["completed_at"] is None and reopened.header("ETag") == '"v3"'
    events = [kind for kind, _ in written(api).events]
    assert events == ["activity.created", "activity.updated", "activity.updated"]


def test_completion_can_also_be_set_by_patch(api: Api) -> None:
    # GIVEN an open task
    task = create(api, kind="task", subject="x", owner_id=api.owner_user_id)

    # WHEN PATCH sets completed_at, then a future one
    done = api.patch(f"/v1/activities/{task['id']}", {"completed_at": PAST})
    future = api.patch(f"/v1/activities/{task['id']}", {"completed_at": FUTURE})

    # THEN the past completion is kept and the future one refused
    assert done.json["completed_at"] == PAST
    assert error_fields(assert_problem(future, 422)) == {"completed_at"}


def test_only_tasks_complete_and_a_stale_if_match_is_412(api: Api) -> None:
    # GIVEN a note and a task
    note = create(api, kind="note", body="x")
    task = create(api, kind="task", subject="x", owner_id=api.owner_user_id)

    # WHEN the note is completed, and the task with an old version
    not_a_task = api.post(f"/v1/activities/{note['id']}/complete")
    api.patch(f"/v1/activities/{task['id']}", {"subject": "y"})
    stale = api.post(f"/v1/activities/{task['id']}/complete", headers={"If-Match": '"v1"'})
    missing = api.post("/v1/activities/01JAAAAAAAAAAAAAAAAAAAAAAA/reopen")

    # THEN they are 422, 412 and 404, and the task is still open
    assert_problem(not_a_task, 422)
    assert_problem(stale, 412)
    assert_problem(missing, 404)
    assert api.get(f"/v1/activities/{task['id']}").json["completed_at"] is None


# ---- tenancy -----------------------------------------------------------------------------------------
def test_another_workspace_cannot_see_or_change_an_activity(api: Api, other_api: Api) -> None:
    # GIVEN a task linked to a contact in this workspace
    task = create(api, kind="task", subject="x", owner_id=api.owner_user_id, links={"contacts": [contact(api)]})
    path = f"/v1/activities/{task['id']}"
    before = written(api)

    # WHEN another workspace reads, lists, searches, changes, completes and archives it
    replies = [other_api.get(path), other_api.patch(path, {"subject": "hacked"}),
               other_api.post(f"{path}/complete"), other_api.delete(path), other_api.get(f"{path}/history")]
    listed = other_api.get("/v1/activities").json["data"]
    found = other_api.post("/v1/activities/search", {"query": "x"}).json["data"]

    # THEN every answer is 404 or empty, and nothing changed
    assert [r.status for r in replies] == [404] * 5
    assert listed == [] and found == []
    assert written(api) == before


def test_a_restricted_member_sees_only_their_teams_activities(api: Api, firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a member limited to their own records, and notes of theirs and of the workspace owner
    member = invite(api, firebase_issuer, "member")
    reply = api.patch("/v1/workspace", {"restrict_member_visibility": True})
    assert reply.status == 200, reply.raw
    mine = member.post("/v1/activities", {"kind": "note", "body": "mine"}).json
    theirs = create(api, kind="note", body="theirs", owner_id=api.owner_user_id)

    # WHEN the member lists and reads them
    listed = [r["id"] for r in member.get("/v1/activities").json["data"]]
    other = member.get(f"/v1/activities/{theirs['id']}")

    # THEN only their own is visible
    assert listed == [mine["id"]]
    assert other.status == 404
