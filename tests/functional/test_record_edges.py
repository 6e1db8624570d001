"""Edges of the record conventions: strict numbers, non-object batch inputs, archived parents, cursors
that belong to another record."""
from __future__ import annotations

import pytest

from tests.support.api import Api


@pytest.mark.parametrize("value", ["12", True, 1.5])
def test_employee_count_must_be_a_json_integer(api: Api, value: object) -> None:
    # GIVEN / WHEN a company whose employee_count is not an integer
    reply = api.post("/v1/companies", {"name": "Acme", "employee_count": value})
    # THEN it is refused, naming the field
    assert reply.status == 422
    assert [e["field"] for e in reply.json["errors"]] == ["employee_count"]


def test_a_non_object_batch_input_fails_alone(api: Api) -> None:
    # GIVEN a batch whose second input is not an object
    reply = api.post("/v1/contacts/batch/create", {"inputs": [{"email": "a@example.com"}, 42]})
    # THEN the first is created and only the second fails
    assert reply.status == 207
    first, second = reply.json["results"]
    assert first["status"] == 201 and first["record"]["email"] == "a@example.com"
    assert second["status"] == 422 and second["outcome"] == "error"


def test_an_archived_company_lists_its_contacts_only_when_asked(api: Api) -> None:
    # GIVEN an archived company with a contact
    company = api.post("/v1/companies", {"name": "Gone"}).json
    api.post("/v1/contacts", {"email": "c@example.com", "company_id": company["id"]})
    assert api.delete(f"/v1/companies/{company['id']}").status == 204
    # WHEN its contacts are listed, without and with include_archived
    hidden = api.get(f"/v1/companies/{company['id']}/contacts")
    shown = api.get(f"/v1/companies/{company['id']}/contacts?include_archived=true")
    # THEN it is hidden like every archived record, unless asked for
    assert hidden.status == 404
    assert shown.status == 200 and [c["email"] for c in shown.json["data"]] == ["c@example.com"]


def test_a_history_cursor_is_refused_on_another_record(api: Api) -> None:
    # GIVEN two contacts, the first with more history than one page
    first = api.post("/v1/contacts", {"email": "one@example.com", "first_name": "One"}).json
    second = api.post("/v1/contacts", {"email": "two@example.com"}).json
    page = api.get(f"/v1/contacts/{first['id']}/history?limit=1").json
    assert page["next_cursor"]
    # WHEN the first record's cursor is used on the second
    reply = api.get(f"/v1/contacts/{second['id']}/history?limit=1&cursor={page['next_cursor']}")
    # THEN it is refused
    assert reply.status == 422
    assert reply.json["errors"][0]["field"] == "cursor"
