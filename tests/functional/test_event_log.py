"""The event log (`GET /v1/events`): committed changes in relay order, replayable from any cursor."""
from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import delete

from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.runtime.inline import InlineQueue
from tests.support.api import Api


def _events(api: Api, **query: str) -> dict:  # type: ignore[type-arg]
    reply = api.get("/v1/events?" + urlencode(query))
    assert reply.status == 200, reply.raw
    return reply.json  # type: ignore[no-any-return]


def test_events_appear_in_order_once_relayed(api: Api, jobs: InlineQueue) -> None:
    # GIVEN three changes to a contact
    contact = api.post("/v1/contacts", {"first_name": "Ada", "email": "ada@example.com"}).json
    api.patch(f"/v1/contacts/{contact['id']}", {"last_name": "Lovelace"})
    api.delete(f"/v1/contacts/{contact['id']}")

    # WHEN the relay has published them (and not before)
    before = _events(api, types="contact.*")
    jobs.run()
    after = _events(api, types="contact.*")

    # THEN the log lists them in order with gapless sequences and one event shape
    assert before["data"] == [] and before["has_more"] is False
    assert [e["type"] for e in after["data"]] == ["contact.created", "contact.updated", "contact.archived"]
    first_sequence = after["data"][0]["sequence"]
    assert [e["sequence"] for e in after["data"]] == [first_sequence, first_sequence + 1, first_sequence + 2]
    first = after["data"][0]
    assert first["record_id"] == contact["id"] and first["object_type"] == "contacts"
    assert first["actor"]["type"] == "api_key" and first["workspace_id"] == api.workspace_id


def test_a_cursor_resumes_after_the_last_event_and_polls_when_empty(api: Api, jobs: InlineQueue) -> None:
    # GIVEN two relayed events and a page of one
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    api.post("/v1/contacts", {"first_name": "B", "email": "b@example.com"})
    jobs.run()
    page = _events(api, types="contact.*", limit="1")

    # WHEN the next page is read, then the one after it, then a new event arrives
    second = _events(api, types="contact.*", after=page["next_cursor"], limit="1")
    empty = _events(api, types="contact.*", after=second["next_cursor"])
    api.post("/v1/contacts", {"first_name": "C", "email": "c@example.com"})
    jobs.run()
    third = _events(api, types="contact.*", after=empty["next_cursor"])

    # THEN each page continues exactly where the last one stopped, and an empty page keeps its place
    assert page["has_more"] is True and second["has_more"] is False
    assert [e["data"]["object"]["first_name"] for e in page["data"] + second["data"]] == ["A", "B"]
    assert empty["data"] == [] and empty["next_cursor"] == second["next_cursor"]
    assert [e["data"]["object"]["first_name"] for e in third["data"]] == ["C"]


def test_types_filter_by_name_and_pattern(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a contact and a company event
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    api.post("/v1/companies", {"name": "Acme", "domain": "acme.example"})
    jobs.run()

    # WHEN the log is read by type and by pattern
    exact = _events(api, types="company.created")
    pattern = _events(api, types="contact.*")

    # THEN only the matching events are listed
    assert [e["type"] for e in exact["data"]] == ["company.created"]
    assert [e["type"] for e in pattern["data"]] == ["contact.created"]


def test_a_rolled_back_write_leaves_no_event(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a request that fails validation after parsing (duplicate email → 409)
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    refused = api.post("/v1/contacts", {"first_name": "B", "email": "a@example.com"})

    # WHEN the outbox is relayed
    jobs.run()

    # THEN only the committed create is in the log
    assert refused.status == 409
    assert [e["type"] for e in _events(api, types="contact.*")["data"]] == ["contact.created"]


def test_another_workspace_sees_none_of_the_events(api: Api, other_api: Api, jobs: InlineQueue) -> None:
    # GIVEN an event in one workspace
    api.post("/v1/contacts", {"first_name": "A", "email": "a@example.com"})
    jobs.run()
    event_id = _events(api, types="contact.*")["data"][0]["id"]

    # WHEN another workspace reads the log and the event
    theirs = _events(other_api)
    one = other_api.get(f"/v1/events/{event_id}")

    # THEN it sees nothing of it, while the owner can read it by id
    assert event_id not in {e["id"] for e in theirs["data"]}
    assert {e["workspace_id"] for e in theirs["data"]} <= {other_api.workspace_id}
    assert one.status == 404
    assert api.get(f"/v1/events/{event_id}").json["id"] == event_id


def test_a_cursor_older_than_the_kept_events_answers_410(api: Api, jobs: InlineQueue) -> None:
    # GIVEN three events, a cursor after the first, and the first two purged by retention
    for name in ("a", "b", "c"):
        api.post("/v1/contacts", {"first_name": name, "email": f"{name}@example.com"})
    jobs.run()
    _, second, _ = _events(api, types="contact.*")["data"]
    cursor = _events(api, types="contact.*", limit="1")["next_cursor"]
    with UnitOfWork(unscoped=True) as uow:  # what the retention sweep does to events older than it keeps
        uow.session.execute(delete(OutboxEvent).where(OutboxEvent.workspace_id == api.workspace_id,
                                                      OutboxEvent.sequence <= second["sequence"]))
        uow.commit()

    # WHEN the old cursor is used
    reply = api.get("/v1/events?" + urlencode({"after": cursor}))

    # THEN the answer says the events are gone instead of silently skipping one
    assert reply.status == 410
    assert reply.header("content-type") == "application/problem+json"


def test_bad_queries_are_refused(api: Api) -> None:
    # GIVEN malformed types, limits and cursors
    # WHEN they are sent
    replies = [api.get("/v1/events?" + urlencode(q)) for q in
               ({"types": "contact"}, {"limit": "0"}, {"after": "forged"})]

    # THEN each is a 422 problem
    assert [r.status for r in replies] == [422, 422, 422]
