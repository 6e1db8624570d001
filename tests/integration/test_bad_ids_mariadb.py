"""Ids that cannot be ours, on MariaDB: a path id answers 404, an id inside a body 422 — never a 500.

MariaDB's id columns are CHAR(26) ascii_bin; a non-ASCII parameter compared with one was "Illegal mix of
collations" (1267, 1271 in an IN list) on every route that takes an id. These go through the real WSGI entry,
each answer checked against the OpenAPI document (so every error is problem+json).
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from shared.ids import new_id
from tests.integration.wsgi_client import call
from tests.support.api import Api, Reply

# As a client sends them, in the URL (percent-decoded bytes) and in JSON.
BAD_PATH_IDS = {
    "non-ascii": "é".encode(),
    "too-long": b"A" * 300,
    "odd-bytes": b"\xff\xfe\x00\x01\x7f",  # not UTF-8, a NUL and control bytes
    "lower-case": new_id().lower().encode(),
}
BAD_BODY_IDS = {
    "non-ascii": "é",
    "too-long": "A" * 300,
    "odd-bytes": "\x00\x01\x7f\ud800",  # NUL, controls, a lone surrogate (JSON "\ud800")
    "lower-case": new_id().lower(),
}


def _path(template: str, bad: bytes, *, to_object: str = "companies") -> str:
    """`template` with every `{param}` replaced: the object type by a real one, ids by `bad`, as the WSGI
    server hands PATH_INFO over (the percent-decoded bytes, read as latin-1)."""
    path = template.replace("{to_object}", to_object).encode()
    return re.sub(rb"{\w+}", bad.replace(b"\\", b"\\\\"), path).decode("latin-1")


def _id_routes() -> list[tuple[str, str]]:
    import app

    return [(method, path) for path, methods in sorted(app.app.routes.items()) if re.search(r"{\w+_id}", path)
            for method in sorted(methods)]


def _problem(reply: Reply, *statuses: int) -> dict[str, Any]:
    assert reply.status in statuses, (reply.status, reply.raw[:300])
    assert (reply.header("Content-Type") or "").startswith("application/problem+json"), reply.headers
    return reply.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", sorted(BAD_PATH_IDS))
def test_every_route_answers_404_for_a_path_id_that_cannot_be_ours(api: Api, kind: str) -> None:
    # GIVEN every route that takes an id in its path, and an id that cannot be one of ours
    bad = BAD_PATH_IDS[kind]
    for method, template in _id_routes():
        # WHEN it is called with that id (a body where it takes one: validation may speak first)
        body = {} if method in ("POST", "PATCH") else None
        reply = call(api, method, _path(template, bad), body)
        # THEN the record is not found (or the body is refused), as problem+json — never a 500
        expected = (404,) if body is None else (404, 422)
        _problem(reply, *expected)


@pytest.mark.parametrize("kind", sorted(BAD_BODY_IDS))
def test_ids_inside_bodies_that_cannot_be_ours_are_422_naming_the_field(api: Api, kind: str) -> None:
    bad = BAD_BODY_IDS[kind]
    contact = call(api, "POST", "/v1/contacts", {"email": f"{new_id().lower()}@example.com"}).json["id"]
    deal = call(api, "POST", "/v1/deals", {"name": "Renewal", "contact_ids": [contact]}).json["id"]

    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/v1/contacts", {"first_name": "Ada", "company_id": bad}, "company_id"),
        ("PATCH", f"/v1/contacts/{contact}", {"owner_id": bad}, "owner_id"),
        ("POST", "/v1/deals", {"name": "New", "contact_ids": [contact, bad]}, "contact_ids.1"),
        ("PATCH", f"/v1/deals/{deal}", {"contact_ids": [bad]}, "contact_ids.0"),
        ("PATCH", f"/v1/deals/{deal}", {"primary_contact_id": bad}, "primary_contact_id"),
        ("POST", f"/v1/deals/{deal}/stage", {"stage_id": bad}, "stage_id"),
        ("POST", "/v1/contacts/merge", {"keep_id": contact, "merge_id": bad}, "merge_id"),
        ("POST", "/v1/activities", {"kind": "note", "body": "hi", "links": {"deals": [bad]}}, "links.deals.0"),
    ]
    for method, path, body, field in cases:
        # WHEN the body names the id
        reply = call(api, method, path, body)
        # THEN 422 names the field at fault
        problem = _problem(reply, 422)
        assert field in {e["field"] for e in problem["errors"]}, (method, path, problem)

    # AND the deal kept its contact (nothing was written)
    assert call(api, "GET", f"/v1/deals/{deal}").json["contact_ids"] == [contact]


@pytest.mark.parametrize("kind", sorted(BAD_BODY_IDS))
def test_batch_inputs_with_ids_that_cannot_be_ours_fail_alone_with_422(api: Api, kind: str) -> None:
    bad = BAD_BODY_IDS[kind]
    contact = call(api, "POST", "/v1/contacts", {"email": f"{new_id().lower()}@example.com"}).json["id"]
    deal = call(api, "POST", "/v1/deals", {"name": "Renewal"}).json["id"]
    for path, inputs, field in [
        ("/v1/contacts/batch/update", [{"id": bad, "first_name": "X"}, {"id": contact, "first_name": "Y"}],
         "inputs.0.id"),
        ("/v1/contacts/batch/archive", [{"id": bad}], "inputs.0.id"),
        # the one that was a 1271 (an IN list of ids) on MariaDB
        ("/v1/deals/batch/update", [{"id": deal, "contact_ids": [contact, bad]}], "inputs.0.contact_ids.1"),
        ("/v1/deals/batch/update", [{"id": bad, "name": "Z"}], "inputs.0.id"),
        ("/v1/associations/batch/create",
         [{"from_object": "contacts", "from_id": contact, "to_object": "deals", "to_id": bad}], "inputs.0.to_id"),
        ("/v1/associations/batch/archive",
         [{"from_object": "contacts", "from_id": bad, "to_object": "deals", "to_id": deal}], "inputs.0.from_id"),
    ]:
        # WHEN a batch holds such an input
        reply = call(api, "POST", path, {"inputs": inputs})
        # THEN that input fails with a 422 naming the field; the others are applied
        assert reply.status == 207, (path, reply.status, reply.raw[:300])
        (failed,) = [r for r in reply.json["results"] if r["outcome"] == "error"]
        assert failed["status"] == 422, failed
        assert field in {e["field"] for e in failed["problem"]["errors"]}, failed
    assert call(api, "GET", f"/v1/contacts/{contact}").json["first_name"] == "Y"


def test_ids_in_queries_and_filters_that_cannot_be_ours_find_nothing(api: Api) -> None:
    call(api, "POST", "/v1/contacts", {"first_name": "Ada"})
    for kind, bad in BAD_BODY_IDS.items():
        # WHEN a search filters an id property on it THEN nothing matches (a filter is a question, not a reference)
        for operator, key in (("EQ", "value"), ("IN", "values"), ("NOT_IN", "values")):
            value: Any = bad if key == "value" else [bad, new_id()]
            reply = call(api, "POST", "/v1/contacts/search", {"filter_groups": [{"filters": [
                {"property": "company_id", "operator": operator, key: value}]}]})
            if kind == "odd-bytes":  # control characters are no text at all: 422, like in any other value
                _problem(reply, 422)
                continue
            assert reply.status == 200, reply.raw[:300]
            assert len(reply.json["data"]) == (1 if operator == "NOT_IN" else 0)
    for path in ("/v1/activities/tasks/mine?owner_id=%C3%A9", "/v1/activities/tasks/overdue?owner_id=%FF%00",
                 "/v1/reports/pipeline-summary?pipeline_id=%C3%A9", f"/v1/reports/forecast?pipeline_id={'A' * 26}"):
        # WHEN a query parameter names one THEN the answer is no match, never a 500
        reply = call(api, "GET", path)
        assert reply.status in (200, 404, 422), (path, reply.status, reply.raw[:300])
