"""POST /v1/{object}/batch/{create|update|upsert|archive}: each input succeeds or fails on its own."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from functions.companies.models import Company
from functions.contacts.models import Contact
from layers.db.base import RecordMixin
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.records.history import FieldHistory
from shared.context import system_scope
from tests.support.api import Api, Reply

MODELS: dict[str, type[RecordMixin]] = {"contacts": Contact, "companies": Company}
UNKNOWN_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    body = reply.json
    assert {"type", "title", "detail"} <= set(body)
    assert body["status"] == status and body["instance"] == reply.header("X-Request-Id")
    return body  # type: ignore[no-any-return]


def rows(api: Api, object_type: str = "contacts") -> dict[str, int]:
    """record id → version, for every record of the type in the workspace."""
    model = MODELS[object_type]
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return {r.id: r.version for r in uow.session.scalars(select(model))}


def history_of(api: Api, record_id: str) -> list[tuple[str, str]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        statement = select(FieldHistory).where(FieldHistory.record_id == record_id).order_by(FieldHistory.id)
        return [(h.action, h.field) for h in uow.session.scalars(statement)]


def events(api: Api, object_type: str = "contacts") -> list[tuple[str, str]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        statement = select(OutboxEvent).where(OutboxEvent.object_type == object_type).order_by(OutboxEvent.id)
        return [(e.event_type, e.record_id) for e in uow.session.scalars(statement)]


def history_count(api: Api) -> int:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return len(list(uow.session.scalars(select(FieldHistory.id))))


def batch(api: Api, operation: str, inputs: Any, object_type: str = "contacts") -> Reply:
    return api.post(f"/v1/{object_type}/batch/{operation}", {"inputs": inputs})


def check_results(reply: Reply, expected: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The results are in input order, one per input, each with the given status and outcome."""
    results = reply.json["results"]
    assert [r["index"] for r in results] == list(range(len(expected)))
    assert [(r["status"], r["outcome"]) for r in results] == expected
    for result in results:
        if result["outcome"] == "error":
            assert "record" not in result or result["record"] is None
            assert result["problem"]["status"] == result["status"]
            assert {"type", "title", "detail", "instance"} <= set(result["problem"])
    return results  # type: ignore[no-any-return]


def fields_of(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem.get("errors") or []}


# ---- create ------------------------------------------------------------------------------------------
def test_batch_create_answers_200_with_every_record_in_input_order(api: Api) -> None:
    # GIVEN three valid contacts
    inputs = [{"email": f"B{i}@Example.com", "first_name": f"B{i}"} for i in range(3)]

    # WHEN they are created in one batch
    reply = batch(api, "create", inputs)

    # THEN 200, one created result per input in order, each with its stored record
    assert reply.status == 200
    results = check_results(reply, [(201, "created")] * 3)
    assert [r["record"]["email"] for r in results] == [f"b{i}@example.com" for i in range(3)]
    assert set(rows(api)) == {r["record"]["id"] for r in results}
    assert events(api) == [("contact.created", r["record"]["id"]) for r in results]
    # AND each record reads back as answered
    for result in results:
        assert api.get(f"/v1/contacts/{result['record']['id']}").json == result["record"]


def test_a_failing_input_fails_alone_and_leaves_nothing_of_itself(api: Api) -> None:
    # GIVEN inputs where the second has a bad email and the fourth names a company that does not exist
    inputs = [{"first_name": "Ok0"}, {"email": "nope"}, {"first_name": "Ok2"},
              {"first_name": "Bad3", "company_id": UNKNOWN_ID}, {"first_name": "Ok4", "shoe_size": 9}]

    # WHEN they are created in one batch
    reply = batch(api, "create", inputs)

    # THEN 207: the valid ones are created, each failure says why with its field path
    assert reply.status == 207
    results = check_results(reply, [(201, "created"), (422, "error"), (201, "created"), (422, "error"),
                                    (422, "error")])
    assert fields_of(results[1]["problem"]) == {"inputs.1.email"}
    assert fields_of(results[3]["problem"]) == {"inputs.3.company_id"}
    assert fields_of(results[4]["problem"]) == {"inputs.4.shoe_size"}
    # AND only the successful inputs wrote rows, history and events
    created = {results[i]["record"]["id"] for i in (0, 2)}
    assert set(rows(api)) == created
    assert {record_id for _, record_id in events(api)} == created and len(events(api)) == 2
    assert history_count(api) == 2  # one first_name row each


def test_duplicate_emails_in_one_batch_fail_the_second(api: Api) -> None:
    # GIVEN two inputs with the same email, spelled differently
    inputs = [{"email": "same@example.com"}, {"email": " SAME@example.com ", "first_name": "Second"}]

    # WHEN they are created in one batch
    reply = batch(api, "create", inputs)

    # THEN the first is created and the second is a 409 naming it
    assert reply.status == 207
    results = check_results(reply, [(201, "created"), (409, "error")])
    assert results[1]["problem"]["existing_id"] == results[0]["record"]["id"]
    assert fields_of(results[1]["problem"]) == {"inputs.1.email"}
    assert list(rows(api)) == [results[0]["record"]["id"]]


@pytest.mark.parametrize("inputs", [[], [{"first_name": f"N{i}"} for i in range(101)]])
def test_batches_of_zero_or_more_than_100_inputs_are_422(api: Api, inputs: list[Any]) -> None:
    # GIVEN an empty batch or one of 101 inputs
    # WHEN it is sent
    reply = batch(api, "create", inputs)

    # THEN the whole request is a 422 on `inputs` and nothing is written
    assert "inputs" in fields_of(assert_problem(reply, 422))
    assert rows(api) == {} and events(api) == []


def test_a_batch_of_exactly_100_is_accepted(api: Api) -> None:
    # GIVEN 100 inputs
    inputs = [{"first_name": f"H{i}"} for i in range(100)]

    # WHEN they are sent
    reply = batch(api, "create", inputs)

    # THEN all are created
    assert reply.status == 200 and len(reply.json["results"]) == 100
    assert len(rows(api)) == 100


@pytest.mark.parametrize("body", [{}, {"inputs": {"first_name": "A"}}, {"inputs": [{}], "atomic": True}])
def test_a_malformed_batch_body_is_422(api: Api, body: dict[str, Any]) -> None:
    # GIVEN a body that is not {"inputs": [...]}
    # WHEN it is sent
    reply = api.post("/v1/contacts/batch/create", body)

    # THEN 422, nothing written
    assert_problem(reply, 422)
    assert rows(api) == {}


# ---- update ------------------------------------------------------------------------------------------
def test_batch_update_changes_each_named_record_and_fails_inputs_without_id(api: Api, other_api: Api) -> None:
    # GIVEN two contacts here and one in another workspace
    made = check_results(batch(api, "create", [{"first_name": "U0"}, {"first_name": "U1"}]), [(201, "created")] * 2)
    first, second = (r["record"] for r in made)
    foreign = other_api.post("/v1/contacts", {"first_name": "Theirs"}).json
    before_events = events(api)

    # WHEN a batch updates them, with one input lacking an id, one unknown, one foreign, one read-only field
    inputs = [
        {"id": first["id"], "job_title": "CTO"},
        {"job_title": "No id"},
        {"id": UNKNOWN_ID, "job_title": "Ghost"},
        {"id": foreign["id"], "job_title": "Theirs"},
        {"id": second["id"], "created_at": "2020-01-01T00:00:00Z"},
        {"id": second["id"], "last_name": "Two"},
    ]
    reply = batch(api, "update", inputs)

    # THEN 207: the good inputs are updated, the others fail with their own problem
    assert reply.status == 207
    results = check_results(reply, [(200, "updated"), (422, "error"), (404, "error"), (404, "error"),
                                    (422, "error"), (200, "updated")])
    assert fields_of(results[1]["problem"]) == {"inputs.1.id"}
    assert [e["code"] for e in results[4]["problem"]["errors"]] == ["read_only"]
    assert results[0]["record"]["job_title"] == "CTO" and results[0]["record"]["first_name"] == "U0"
    assert results[5]["record"]["last_name"] == "Two"
    # AND only the two updates wrote events; the foreign contact is untouched
    assert events(api) == [*before_events, ("contact.updated", first["id"]), ("contact.updated", second["id"])]
    assert other_api.get(f"/v1/contacts/{foreign['id']}").json == foreign


def test_a_failed_batch_update_leaves_its_record_untouched(api: Api) -> None:
    # GIVEN a contact
    record = api.post("/v1/contacts", {"first_name": "Still"}).json
    versions = rows(api)

    # WHEN a batch update gives it an unknown company (a check that runs after validation)
    reply = batch(api, "update", [{"id": record["id"], "first_name": "Changed", "company_id": UNKNOWN_ID}])

    # THEN that input fails, and the record, its history and the outbox are as before
    assert reply.status == 207
    check_results(reply, [(422, "error")])
    assert rows(api) == versions
    assert history_of(api, record["id"]) == [("created", "first_name")]
    assert api.get(f"/v1/contacts/{record['id']}").json == record


# ---- upsert ------------------------------------------------------------------------------------------
def test_contact_upsert_creates_then_updates_the_same_record_by_email(api: Api) -> None:
    # GIVEN no contact with this email
    # WHEN it is upserted twice, the second time with a different spelling and another field
    created = batch(api, "upsert", [{"email": "up@example.com", "first_name": "Up"}])
    updated = batch(api, "upsert", [{"email": " UP@Example.com", "job_title": "CTO"}])

    # THEN the first creates, the second updates the same record, leaving unsent fields alone
    assert created.status == 200 and updated.status == 200
    first = check_results(created, [(201, "created")])[0]["record"]
    second = check_results(updated, [(200, "updated")])[0]["record"]
    assert second["id"] == first["id"]
    assert second["first_name"] == "Up" and second["job_title"] == "CTO"
    assert list(rows(api)) == [first["id"]]
    assert events(api) == [("contact.created", first["id"]), ("contact.updated", first["id"])]


def test_upsert_twice_in_one_batch_creates_once_then_updates(api: Api) -> None:
    # GIVEN two inputs for one email in the same batch
    inputs = [{"email": "twice@example.com", "first_name": "A"}, {"email": "twice@example.com", "last_name": "B"}]

    # WHEN they are upserted
    reply = batch(api, "upsert", inputs)

    # THEN the second updates what the first created
    results = check_results(reply, [(201, "created"), (200, "updated")])
    assert results[0]["record"]["id"] == results[1]["record"]["id"]
    assert (results[1]["record"]["first_name"], results[1]["record"]["last_name"]) == ("A", "B")


def test_upsert_matching_an_archived_contact_is_409_for_that_input(api: Api) -> None:
    # GIVEN an archived contact
    archived = api.post("/v1/contacts", {"email": "old@example.com"}).json
    assert api.delete(f"/v1/contacts/{archived['id']}").status == 204
    before = events(api)

    # WHEN it is upserted alongside a new contact
    reply = batch(api, "upsert", [{"email": "old@example.com", "first_name": "Back"},
                                  {"email": "new@example.com"}])

    # THEN that input is a 409 naming it, the other is created, and the archived one is untouched
    assert reply.status == 207
    results = check_results(reply, [(409, "error"), (201, "created")])
    assert results[0]["problem"]["existing_id"] == archived["id"]
    assert events(api) == [*before, ("contact.created", results[1]["record"]["id"])]
    assert api.get(f"/v1/contacts/{archived['id']}?include_archived=true").json["first_name"] is None


def test_upsert_needs_the_unique_property(api: Api) -> None:
    # GIVEN an input with no email
    # WHEN it is upserted
    reply = batch(api, "upsert", [{"first_name": "Nameless"}])

    # THEN that input is a 422 naming inputs.0.email, and nothing is written
    results = check_results(reply, [(422, "error")])
    assert fields_of(results[0]["problem"]) == {"inputs.0.email"}
    assert rows(api) == {}


def test_company_upsert_matches_on_the_normalised_domain(api: Api) -> None:
    # GIVEN no company at acme.com
    # WHEN it is upserted twice with differently written domains
    created = batch(api, "upsert", [{"name": "Acme", "domain": "https://www.acme.com/"}], "companies")
    updated = batch(api, "upsert", [{"name": "Acme Inc", "domain": "ACME.com", "employee_count": 5}], "companies")

    # THEN the second updates the first
    first = check_results(created, [(201, "created")])[0]["record"]
    second = check_results(updated, [(200, "updated")])[0]["record"]
    assert second["id"] == first["id"]
    assert (second["name"], second["domain"], second["employee_count"]) == ("Acme Inc", "acme.com", 5)
    assert events(api, "companies") == [("company.created", first["id"]), ("company.updated", first["id"])]


# ---- archive -----------------------------------------------------------------------------------------
def test_batch_archive_archives_each_named_record(api: Api) -> None:
    # GIVEN three contacts
    made = check_results(batch(api, "create", [{"first_name": f"A{i}"} for i in range(3)]), [(201, "created")] * 3)
    ids = [r["record"]["id"] for r in made]
    assert api.get(f"/v1/contacts/{ids[0]}").status == 200  # read once, so it is cached

    # WHEN two are archived, with an input lacking an id, one unknown and one with an extra field
    inputs = [{"id": ids[0]}, {}, {"id": UNKNOWN_ID}, {"id": ids[2], "reason": "old"}, {"id": ids[1]}, {"id": ids[0]}]
    reply = batch(api, "archive", inputs)

    # THEN the good ones are archived (twice is fine) and the bad ones fail alone
    assert reply.status == 207
    results = check_results(reply, [(200, "archived"), (422, "error"), (404, "error"), (422, "error"),
                                    (200, "archived"), (200, "archived")])
    assert all(results[i]["record"] is None for i in (0, 4, 5))
    assert fields_of(results[1]["problem"]) == {"inputs.1.id"}
    assert fields_of(results[3]["problem"]) == {"inputs.3.reason"}
    assert [r["id"] for r in api.get("/v1/contacts").json["data"]] == [ids[2]]
    assert api.get(f"/v1/contacts/{ids[0]}").status == 404
    archived_events = [record_id for kind, record_id in events(api) if kind == "contact.archived"]
    assert archived_events == [ids[0], ids[1]]


@pytest.mark.parametrize("object_type, good, bad", [
    ("contacts", {"first_name": "Ok"}, {"lifecycle_stage": "vip", "first_name": "Bad"}),
    ("companies", {"name": "Ok"}, {"name": "Bad", "employee_count": -1}),
])
def test_every_operation_reports_207_when_one_input_fails(
    api: Api, object_type: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    # GIVEN one record of the type
    record = api.post(f"/v1/{object_type}", good).json

    # WHEN each operation runs with one good and one bad input
    outcomes = {
        "create": batch(api, "create", [good, bad], object_type),
        "update": batch(api, "update", [{"id": record["id"], **good}, {"id": record["id"], **bad}], object_type),
        "archive": batch(api, "archive", [{"id": record["id"]}, {"id": UNKNOWN_ID}], object_type),
    }

    # THEN each is a 207 with the good input done and the bad one failed
    for operation, reply in outcomes.items():
        assert reply.status == 207, operation
        assert [r["outcome"] for r in reply.json["results"]][1] == "error", operation
        assert reply.json["results"][0]["outcome"] in ("created", "updated", "archived"), operation
