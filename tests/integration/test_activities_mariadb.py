"""Activities on MariaDB: a busy contact's timeline pages exactly (DATETIME(6) keysets across two
tables, ties included), the task lists' NULL ordering, and another workspace sees and changes nothing."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from functions.activities.models import Activity
from functions.associations.models import Association
from layers.db.uow import UnitOfWork
from shared.context import system_scope
from tests.support.api import Api

KINDS = ("note", "call", "meeting", "email", "task")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _activities_for(contact_id: str, owner_id: str, count: int) -> list[dict[str, Any]]:
    """`count` activities of every kind, spread from 2 h ago to 1 h ahead, pairs sharing a time."""
    base = datetime.now(UTC) - timedelta(hours=2)
    inputs = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        moment = base + timedelta(minutes=(i // 2) * 1.7, microseconds=123)  # i and i+1 tie
        item: dict[str, Any] = {"kind": kind, "links": {"contacts": [contact_id]}, "subject": f"#{i}"}
        if kind == "note":
            item["body"] = f"note {i}"
        elif kind in ("call", "meeting"):
            item["starts_at"] = _iso(moment)
        elif kind == "email":
            item |= {"direction": "outbound", "sent_at": _iso(min(moment, datetime.now(UTC)))}
        else:
            item |= {"owner_id": owner_id, "due_at": _iso(moment)}
        inputs.append(item)
    return inputs


def _batch_create(api: Api, inputs: list[dict[str, Any]]) -> None:
    for start in range(0, len(inputs), 100):
        reply = api.post("/v1/activities/batch/create", {"inputs": inputs[start:start + 100]})
        assert reply.status == 200, reply.raw


def _pages(api: Api, path: str, limit: int) -> list[list[dict[str, Any]]]:
    collected, cursor = [], None
    while True:
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        reply = api.get(f"{path}{'&' if '?' in path else '?'}{query}")
        assert reply.status == 200, reply.raw
        collected.append(reply.json["data"])
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return collected


def _busy_contact(api: Api) -> dict[str, Any]:
    """A contact with 200 activities and field history written between them."""
    contact = api.post("/v1/contacts", {"first_name": "Ada", "email": "ada@example.com"}).json
    inputs = _activities_for(contact["id"], api.owner_user_id, 200)
    _batch_create(api, inputs[:100])
    for title in ("Engineer", "Lead", "CTO"):  # history entries in the middle of the activity times
        assert api.patch(f"/v1/contacts/{contact['id']}", {"job_title": title}).status == 200
    _batch_create(api, inputs[100:])
    return contact  # type: ignore[no-any-return]


def _expected(api: Api, contact_id: str) -> list[tuple[str, str]]:
    """Every activity and history entry of the contact, newest first by (time, id), from the record APIs."""
    items = [(_at(a["occurred_at"]), a["id"], a["kind"])
             for page in _pages(api, "/v1/activities", 200) for a in page if contact_id in a["links"]["contacts"]]
    items += [(_at(h["changed_at"]), h["id"], "history")
              for page in _pages(api, f"/v1/contacts/{contact_id}/history", 200) for h in page]
    return [(kind, item_id) for _, item_id, kind in sorted(items, reverse=True)]


def _entries(pages: list[list[dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(e["kind"], e["id"]) for page in pages for e in page]


def test_a_timeline_of_200_activities_and_history_pages_with_no_repeat_or_gap(api: Api) -> None:
    # GIVEN a contact with 200 activities (times tied in pairs) and 5 field-history entries between them
    # (one busy contact for every check: seeding it is the slow part of this test)
    contact = _busy_contact(api)
    path = f"/v1/contacts/{contact['id']}/timeline"
    expected = _expected(api, contact["id"])
    assert len([k for k, _ in expected if k != "history"]) == 200 and len(expected) == 205

    # WHEN its timeline is read in pages of 7, and of 200
    started = time.perf_counter()
    small = _pages(api, path, 7)
    per_page = (time.perf_counter() - started) / len(small)
    large = _pages(api, path, 200)

    # THEN both give every entry once, newest first, exactly in (time, id) order
    assert _entries(small) == expected
    assert _entries(large) == expected and len(large[0]) == 200
    # AND paging stays cheap: each page is a handful of indexed queries (a generous bound for a busy box)
    assert per_page < 0.5

    # WHEN kinds-filtered timelines are paged
    for kinds in ("history", "note,history", "call,meeting,email,task"):
        wanted = set(kinds.split(","))
        filtered = _pages(api, f"{path}?kinds={kinds}", 9)

        # THEN each is the same order restricted to those kinds
        assert _entries(filtered) == [entry for entry in expected if entry[0] in wanted], kinds


def test_task_lists_order_undated_last_and_page_on_mariadb(api: Api) -> None:
    # GIVEN open tasks: two due at the same time, one earlier, two undated, and one overdue but done
    me = api.owner_user_id
    made = {}
    for name, due in (("tie1", "2030-05-05T10:00:00.000001Z"), ("tie2", "2030-05-05T10:00:00.000001Z"),
                      ("early", "2020-05-05T10:00:00Z"), ("open1", None), ("open2", None)):
        body = {"kind": "task", "subject": name, "owner_id": me, **({"due_at": due} if due else {})}
        made[name] = api.post("/v1/activities", body).json["id"]
    api.post("/v1/activities", {"kind": "task", "subject": "done", "owner_id": me, "due_at": "2020-01-01T00:00:00Z",
                                "completed_at": "2020-01-02T00:00:00Z"})

    # WHEN the open tasks and the overdue ones are paged one by one
    mine = [t["id"] for page in _pages(api, f"/v1/activities/tasks/mine?owner_id={me}", 1) for t in page]
    overdue = [t["id"] for page in _pages(api, "/v1/activities/tasks/overdue", 1) for t in page]

    # THEN the order is due time, then id; undated last; the done task in neither
    ties = sorted([made["tie1"], made["tie2"]])
    assert mine == [made["early"], *ties, *sorted([made["open1"], made["open2"]])]
    assert overdue == [made["early"]]


def test_another_workspace_cannot_see_link_or_change_activities(api: Api, other_api: Api) -> None:
    # GIVEN a contact with a task and a note in workspace A
    contact = api.post("/v1/contacts", {"first_name": "Zed"}).json
    links = {"contacts": [contact["id"]]}
    task = api.post("/v1/activities", {"kind": "task", "subject": "secret", "owner_id": api.owner_user_id,
                                       "due_at": "2020-01-01T00:00:00Z", "links": links}).json
    api.post("/v1/activities", {"kind": "note", "body": "secret", "links": links})

    def counts() -> tuple[int, int]:
        with UnitOfWork(system_scope(other_api.workspace_id)) as uow:
            return (uow.session.scalar(select(func.count()).select_from(Activity)) or 0,
                    uow.session.scalar(select(func.count()).select_from(Association)) or 0)

    # WHEN workspace B reads A's timeline, lists and searches, writes to A's task, and links to A's contact
    timeline = other_api.get(f"/v1/contacts/{contact['id']}/timeline")
    reads = [other_api.get(f"/v1/activities/{task['id']}"), other_api.post(f"/v1/activities/{task['id']}/complete"),
             other_api.patch(f"/v1/activities/{task['id']}", {"subject": "mine now"})]
    listed = other_api.get("/v1/activities?limit=200").json["data"]
    found = other_api.post("/v1/activities/search", {"query": "secret"}).json["data"]
    overdue = other_api.get("/v1/activities/tasks/overdue").json["data"]
    mine = other_api.get(f"/v1/activities/tasks/mine?owner_id={api.owner_user_id}&status=all").json["data"]
    linked = other_api.post("/v1/activities", {"kind": "note", "body": "x", "links": links})

    # THEN A's records do not exist for B, the link is refused, and B's tables hold nothing
    assert timeline.status == 404 and [r.status for r in reads] == [404, 404, 404]
    assert listed == found == overdue == mine == []
    assert linked.status == 422
    assert counts() == (0, 0)
    # AND A's task is untouched
    assert api.get(f"/v1/activities/{task['id']}").json == task
