"""Record timelines (activities + field history in one cursor-paged stream) and the task lists."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite

PAST = "2020-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"


def create(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/activities", fields)
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def task(api: Api, owner_id: str, **fields: Any) -> dict[str, Any]:
    return create(api, kind="task", subject=fields.pop("subject", "do it"), owner_id=owner_id, **fields)


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    return reply.json  # type: ignore[no-any-return]


def pages(api: Api, path: str, limit: int) -> list[list[dict[str, Any]]]:
    """Every page of a cursor-paged list."""
    collected: list[list[dict[str, Any]]] = []
    cursor = None
    sep = "&" if "?" in path else "?"
    while True:
        reply = api.get(f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200, reply.raw
        collected.append(reply.json["data"])
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return collected


def entries(api: Api, path: str, limit: int = 200) -> list[tuple[str, str]]:
    return [(e["kind"], e["id"]) for page in pages(api, path, limit) for e in page]


@pytest.fixture
def busy_contact(api: Api) -> dict[str, Any]:
    """A contact with history (created, then renamed) and activities before, between and after."""
    contact = api.post("/v1/contacts", {"first_name": "Ada", "email": "ada@example.com"}).json
    links = {"contacts": [contact["id"]]}
    call = create(api, kind="call", starts_at=PAST, links=links)
    note = create(api, kind="note", body="first", links=links)
    api.patch(f"/v1/contacts/{contact['id']}", {"job_title": "CTO"})
    meeting = create(api, kind="meeting", starts_at=FUTURE, links=links)
    email = create(api, kind="email", direction="inbound", links=links)
    unrelated = create(api, kind="note", body="elsewhere")
    return {"contact": contact, "call": call, "note": note, "meeting": meeting, "email": email,
            "unrelated": unrelated, "path": f"/v1/contacts/{contact['id']}/timeline"}


# ---- timeline ----------------------------------------------------------------------------------------
def test_timeline_merges_activities_and_history_newest_first(api: Api, busy_contact: dict[str, Any]) -> None:
    # GIVEN a contact with activities and field history interleaved in time
    history = api.get(f"/v1/contacts/{busy_contact['contact']['id']}/history").json["data"]
    renamed = [h["id"] for h in history if h["action"] == "updated"]
    created = sorted((h for h in history if h["action"] == "created"), key=lambda h: h["id"], reverse=True)

    # WHEN its timeline is read
    reply = api.get(busy_contact["path"])

    # THEN it is one stream, newest first: the future meeting, the email, the rename, the note, the
    # creation entries, and the old call; the unrelated note is not there
    assert reply.status == 200, reply.raw
    got = [(e["kind"], e["id"]) for e in reply.json["data"]]
    assert got == [("meeting", busy_contact["meeting"]["id"]), ("email", busy_contact["email"]["id"]),
                   ("history", renamed[0]), ("note", busy_contact["note"]["id"]),
                   *[("history", h["id"]) for h in created], ("call", busy_contact["call"]["id"])]
    assert reply.json["next_cursor"] is None
    first = reply.json["data"][0]
    assert first["activity"] == api.get(f"/v1/activities/{first['id']}").json and first["change"] is None
    assert first["at"] == FUTURE
    change = reply.json["data"][2]
    assert change["activity"] is None and change["change"]["field"] == "job_title"
    assert change["change"]["new_value"] == "CTO" and change["at"] == change["change"]["changed_at"]


@pytest.mark.parametrize("kinds", [None, "history", "note,call", "meeting,email,history", "task"])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_timeline_pages_across_both_sources_without_gaps_or_repeats(
    api: Api, busy_contact: dict[str, Any], kinds: str | None, limit: int
) -> None:
    # GIVEN the whole timeline for a kinds filter, read in one page
    path = busy_contact["path"] + (f"?kinds={kinds}" if kinds else "")
    whole = entries(api, path)

    # WHEN it is read in small pages
    paged = pages(api, path, limit)

    # THEN the pages are full (but the last), concatenate to the whole, and hold only the kinds asked for
    flat = [(e["kind"], e["id"]) for page in paged for e in page]
    assert flat == whole
    assert all(len(page) == limit for page in paged[:-1])
    wanted = set(kinds.split(",")) if kinds else {"note", "call", "meeting", "email", "task", "history"}
    assert {kind for kind, _ in whole} <= wanted
    expected = {"history": 3, "note,call": 2, "meeting,email,history": 5, "task": 0}.get(kinds or "", 7)
    assert len(whole) == expected


def test_archived_and_unlinked_activities_leave_the_timeline(api: Api, busy_contact: dict[str, Any]) -> None:
    # GIVEN a contact's timeline
    # WHEN one activity is archived and another unlinked from the contact
    api.delete(f"/v1/activities/{busy_contact['note']['id']}")
    api.patch(f"/v1/activities/{busy_contact['call']['id']}", {"links": {"contacts": []}})

    # THEN neither is on it any more; restoring brings the archived one back
    ids = {entry_id for _, entry_id in entries(api, busy_contact["path"] + "?kinds=note,call")}
    assert ids == set()
    api.post(f"/v1/activities/{busy_contact['note']['id']}/restore")
    assert entries(api, busy_contact["path"] + "?kinds=note,call") == [("note", busy_contact["note"]["id"])]


def test_company_timeline_shows_activities_linked_to_the_company(api: Api) -> None:
    # GIVEN a company with a note about it
    company = api.post("/v1/companies", {"name": "Acme"}).json
    note = create(api, kind="note", body="x", links={"companies": [company["id"]]})

    # WHEN its timeline is read without history
    got = entries(api, f"/v1/companies/{company['id']}/timeline?kinds=note")

    # THEN the note is there
    assert got == [("note", note["id"])]


@pytest.mark.parametrize("query", ["kinds=sms", "kinds=", "limit=0", "limit=201", "since=yesterday",
                                   "cursor=not-a-cursor"])
def test_timeline_bad_query_is_422(api: Api, busy_contact: dict[str, Any], query: str) -> None:
    # GIVEN a contact WHEN its timeline is asked with a bad parameter THEN it is a 422
    assert_problem(api.get(f"{busy_contact['path']}?{query}"), 422)


def test_a_timeline_cursor_works_only_for_its_own_record_and_kinds(api: Api, busy_contact: dict[str, Any]) -> None:
    # GIVEN a cursor of one contact's timeline
    cursor = api.get(busy_contact["path"] + "?limit=1").json["next_cursor"]
    other = api.post("/v1/contacts", {"first_name": "Bob"}).json

    # WHEN it is used for another record, or other kinds
    elsewhere = api.get(f"/v1/contacts/{other['id']}/timeline?limit=1&cursor={cursor}")
    filtered = api.get(f"{busy_contact['path']}?limit=1&kinds=note&cursor={cursor}")

    # THEN both are refused
    assert_problem(elsewhere, 422)
    assert_problem(filtered, 422)


def test_timeline_of_a_missing_archived_or_foreign_record_is_404(
    api: Api, other_api: Api, busy_contact: dict[str, Any]
) -> None:
    # GIVEN a contact of this workspace, archived, and the other workspace's view of it
    contact_id = busy_contact["contact"]["id"]

    # WHEN timelines are read
    foreign = other_api.get(busy_contact["path"])
    missing = api.get("/v1/contacts/01JAAAAAAAAAAAAAAAAAAAAAAA/timeline")
    missing_deal = api.get("/v1/deals/01JAAAAAAAAAAAAAAAAAAAAAAA/timeline")
    api.delete(f"/v1/contacts/{contact_id}")
    archived = api.get(busy_contact["path"])

    # THEN each is a 404
    for reply in (foreign, missing, missing_deal, archived):
        assert_problem(reply, 404)


def test_a_restricted_member_sees_only_visible_activities_on_a_timeline(
    api: Api, firebase_issuer: FirebaseTestIssuer
) -> None:
    # GIVEN a member limited to their records, their contact, and notes on it by them and by the owner
    member = invite(api, firebase_issuer, "member")
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200
    contact = member.post("/v1/contacts", {"first_name": "Ada"}).json
    links = {"contacts": [contact["id"]]}
    theirs = member.post("/v1/activities", {"kind": "note", "body": "mine", "links": links}).json
    create(api, kind="note", body="owner's", owner_id=api.owner_user_id, links=links)

    # WHEN the member and the owner's key read the timeline
    seen_by_member = entries(member, f"/v1/contacts/{contact['id']}/timeline?kinds=note")
    seen_by_key = entries(api, f"/v1/contacts/{contact['id']}/timeline?kinds=note")

    # THEN the member sees only their own note; the admin key sees both
    assert seen_by_member == [("note", theirs["id"])]
    assert len(seen_by_key) == 2


# ---- tasks -------------------------------------------------------------------------------------------
def test_my_tasks_are_soonest_first_undated_last_and_page(api: Api) -> None:
    # GIVEN tasks of the owner (due later, sooner, undated, done) and of someone else, and a note
    me = api.owner_user_id
    later = task(api, me, due_at="2030-01-02T00:00:00Z")
    sooner = task(api, me, due_at="2030-01-01T00:00:00Z")
    undated = task(api, me)
    done = task(api, me, due_at=PAST, completed_at=PAST)
    create(api, kind="note", body="not a task")

    # WHEN an API key lists them by owner, page by page, per status
    path = f"/v1/activities/tasks/mine?owner_id={me}"
    open_pages = pages(api, path, 1)
    completed = pages(api, path + "&status=completed", 50)
    every = pages(api, path + "&status=all", 2)

    # THEN open tasks come soonest first, undated last, one per page; the filters hold
    assert [t["id"] for page in open_pages for t in page] == [sooner["id"], later["id"], undated["id"]]
    assert [t["id"] for page in completed for t in page] == [done["id"]]
    assert [t["id"] for page in every for t in page] == [done["id"], sooner["id"], later["id"], undated["id"]]


def test_my_tasks_needs_an_owner_for_an_api_key(api: Api) -> None:
    # GIVEN an API key (not a person) WHEN it asks for "my" tasks without owner_id or with a bad status
    # THEN it is told tasks are per person
    problem = assert_problem(api.get("/v1/activities/tasks/mine"), 422)
    assert {e["field"] for e in problem["errors"]} == {"query.owner_id"}
    assert_problem(api.get(f"/v1/activities/tasks/mine?owner_id={api.owner_user_id}&status=late"), 422)


def test_a_persons_tasks_are_their_own(api: Api, firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a member with a task of their own, and a task of the owner
    person = invite(api, firebase_issuer, "member")
    mine = person.post("/v1/activities", {"kind": "task", "subject": "mine"}).json
    task(api, api.owner_user_id)

    # WHEN they list their tasks, and try someone else's
    listed = person.get("/v1/activities/tasks/mine")
    others = person.get(f"/v1/activities/tasks/mine?owner_id={api.owner_user_id}")

    # THEN they see theirs only; naming another owner is refused
    assert [t["id"] for t in listed.json["data"]] == [mine["id"]]
    assert_problem(others, 422)


def test_overdue_tasks_for_keys_admins_and_members(api: Api, firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN overdue tasks of the owner and of a member, a done one, an archived one and one due later
    member = invite(api, firebase_issuer, "member")
    admin = invite(api, firebase_issuer, "admin")
    owners_old = task(api, api.owner_user_id, due_at="2020-01-01T00:00:00Z")
    members_old = task(api, member.owner_user_id, due_at="2021-01-01T00:00:00Z")
    task(api, api.owner_user_id, due_at=PAST, completed_at=PAST)
    archived = task(api, api.owner_user_id, due_at=PAST)
    api.delete(f"/v1/activities/{archived['id']}")
    task(api, api.owner_user_id, due_at=FUTURE)

    # WHEN the key, an admin and the member list overdue tasks
    by_key = [t["id"] for page in pages(api, "/v1/activities/tasks/overdue", 1) for t in page]
    by_key_for_member = api.get(f"/v1/activities/tasks/overdue?owner_id={member.owner_user_id}").json["data"]
    by_admin = [t["id"] for t in admin.get("/v1/activities/tasks/overdue").json["data"]]
    by_member = [t["id"] for t in member.get("/v1/activities/tasks/overdue").json["data"]]
    member_asks_for_owner = member.get(f"/v1/activities/tasks/overdue?owner_id={api.owner_user_id}")

    # THEN keys and admins see everyone's, oldest due first; the member sees their own and may not ask for others
    assert by_key == [owners_old["id"], members_old["id"]]
    assert [t["id"] for t in by_key_for_member] == [members_old["id"]]
    assert by_admin == by_key
    assert by_member == [members_old["id"]]
    assert_problem(member_asks_for_owner, 403)


def test_a_task_list_cursor_is_bound_to_its_list(api: Api) -> None:
    # GIVEN a cursor of the open-tasks list
    me = api.owner_user_id
    task(api, me, due_at=PAST)
    task(api, me, due_at=PAST)
    cursor = api.get(f"/v1/activities/tasks/mine?owner_id={me}&limit=1").json["next_cursor"]

    # WHEN it is used for another status and for the overdue list
    # THEN both are refused
    assert_problem(api.get(f"/v1/activities/tasks/mine?owner_id={me}&status=all&limit=1&cursor={cursor}"), 422)
    assert_problem(api.get(f"/v1/activities/tasks/overdue?limit=1&cursor={cursor}"), 422)


def test_task_lists_do_not_cross_workspaces(api: Api, other_api: Api) -> None:
    # GIVEN an overdue task in this workspace
    task(api, api.owner_user_id, due_at=PAST)

    # WHEN the other workspace lists tasks, naming this workspace's owner
    mine = other_api.get(f"/v1/activities/tasks/mine?owner_id={api.owner_user_id}&status=all")
    overdue = other_api.get("/v1/activities/tasks/overdue")

    # THEN it sees none
    assert mine.status == 200 and mine.json["data"] == []
    assert overdue.status == 200 and overdue.json["data"] == []
