"""Associations on MariaDB: labels match ignoring case as the unique key does, archive hides and restore
shows, pages of many links, a failed batch input leaves nothing, and another workspace sees nothing."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from functions.associations.models import Association
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from shared.context import system_scope
from tests.support.api import Api, Reply


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def rows(api: Api) -> list[tuple[str, str, str]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return [(a.from_id, a.to_id, a.label) for a in uow.session.scalars(select(Association))]


def test_labels_differing_in_case_are_one_link(api: Api) -> None:
    # GIVEN a contact linked to a company as "Decision maker"
    person = created(api.post("/v1/contacts", {"first_name": "Pat"}))["id"]
    acme = created(api.post("/v1/companies", {"name": "Acme"}))["id"]
    first = created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": "Decision maker"}))

    # WHEN linked again as "DECISION MAKER" (MariaDB's unique key would refuse a second row anyway)
    again = api.post(f"/v1/companies/{acme}/associations/contacts/{person}", {"label": "DECISION MAKER"})

    # THEN it is the same link, answered 200, one row
    assert again.status == 200 and again.json["id"] == first["id"]
    assert len(rows(api)) == 1


def test_archive_hides_restore_shows_and_lists_page(api: Api) -> None:
    # GIVEN a company linked to 120 contacts
    acme = created(api.post("/v1/companies", {"name": "Acme"}))["id"]
    people = []
    for start in (0, 100):
        made = api.post("/v1/contacts/batch/create", {"inputs": [
            {"first_name": f"P{i}"} for i in range(start, min(start + 100, 120))]})
        assert made.status == 200, made.raw
        people += [r["record"]["id"] for r in made.json["results"]]
    reply = api.post("/v1/associations/batch/create", {"inputs": [
        {"from_object": "companies", "from_id": acme, "to_object": "contacts", "to_id": p} for p in people[:100]]})
    assert reply.status == 200, reply.raw
    for person in people[100:105]:
        created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}"))
    assert api.post("/v1/associations/batch/create", {"inputs": [
        {"from_object": "contacts", "from_id": p, "to_object": "companies", "to_id": acme} for p in people[105:]]}
    ).status == 200
    assert api.delete(f"/v1/contacts/{people[0]}").status == 204

    # WHEN its contacts are paged 50 at a time
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get(f"/v1/companies/{acme}/associations/contacts?limit=50" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, page.raw
        seen += [e["to_id"] for e in page.json["data"]]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break

    # THEN every live contact comes once, the archived one not
    assert len(seen) == len(set(seen)) and sorted(seen) == sorted(people[1:])
    # AND restoring it brings its link back
    assert api.post(f"/v1/contacts/{people[0]}/restore").status == 200
    assert people[0] in api.get(f"/v1/companies/{acme}/associations/contacts?limit=200").raw.decode()


def test_a_failed_batch_input_leaves_no_row_or_event(api: Api) -> None:
    # GIVEN a contact and a company
    person = created(api.post("/v1/contacts", {"first_name": "Pat"}))["id"]
    acme = created(api.post("/v1/companies", {"name": "Acme"}))["id"]

    # WHEN a batch has a good input and one naming a missing company
    reply = api.post("/v1/associations/batch/create", {"inputs": [
        {"from_object": "contacts", "from_id": person, "to_object": "companies", "to_id": acme},
        {"from_object": "contacts", "from_id": person, "to_object": "companies", "to_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"},
    ]})

    # THEN 207, and only the good input has a row and an event
    assert reply.status == 207 and [r["status"] for r in reply.json["results"]] == [201, 404]
    assert rows(api) == [(person, acme, "")] or rows(api) == [(acme, person, "")]
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        kinds = [e.event_type for e in uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.object_type == "associations"))]
    assert kinds == ["association.created"]


def test_another_workspace_cannot_see_or_change_links(api: Api, other_api: Api) -> None:
    # GIVEN a link here
    person = created(api.post("/v1/contacts", {"first_name": "Pat"}))["id"]
    acme = created(api.post("/v1/companies", {"name": "Acme"}))["id"]
    created(api.post(f"/v1/contacts/{person}/associations/companies/{acme}", {"label": "owner"}))

    # WHEN the other workspace lists, unlinks and reads the link table through its own unit of work
    listed = other_api.get(f"/v1/contacts/{person}/associations/companies")
    removed = other_api.delete(f"/v1/contacts/{person}/associations/companies/{acme}")
    with UnitOfWork(system_scope(other_api.workspace_id)) as uow:
        visible = list(uow.session.scalars(select(Association)))

    # THEN nothing of this workspace exists there, and the link is untouched
    assert listed.status == 404 and removed.status == 404 and visible == []
    assert len(rows(api)) == 1
