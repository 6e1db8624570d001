"""Bad input is a 4xx problem, never a 5xx: JSON nested too deep, nulls, control characters, LIKE wildcards."""
from __future__ import annotations

import pytest

from tests.support.api import Api

PROBLEM_JSON = "application/problem+json"


def _problem(reply, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert reply.status == status, (reply.status, reply.raw[:300])
    assert (reply.header("Content-Type") or "").startswith(PROBLEM_JSON)
    return reply.json  # type: ignore[no-any-return]


# ---- JSON nested too deep ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/contacts"), ("POST", "/v1/contacts/search"), ("POST", "/v1/contacts/batch/create"),
    ("POST", "/v1/deals"), ("POST", "/v1/webhooks"), ("POST", "/v1/automations"),
])
def test_a_body_of_50000_brackets_is_a_400(api: Api, method: str, path: str) -> None:
    # WHEN a body opens 50,000 arrays THEN it is refused as too deep, before anything recurses on it
    problem = _problem(api.request(method, path, raw="[" * 50_000), 400)
    assert problem["type"] == "urn:crm:problem:json-too-deep"


def test_custom_fields_nested_thousands_deep_are_a_400_and_write_nothing(api: Api) -> None:
    body = '{"first_name": "Ada", "custom_fields": ' + '{"x":' * 5_000 + '"deep"' + "}" * 5_000 + "}"
    _problem(api.post("/v1/contacts", raw=body), 400)
    _problem(api.patch("/v1/contacts/01ARZ3NDEKTSV4RRFFQ69G5FAV", raw=body), 400)
    assert api.get("/v1/contacts").json["data"] == []


def test_a_body_nested_just_within_the_limit_is_validated_as_usual(api: Api) -> None:
    # GIVEN a custom field value nested 60 levels (within the limit) WHEN created THEN an ordinary 422
    body = '{"first_name": "Ada", "custom_fields": {"x": ' + "[" * 60 + "]" * 60 + "}}"
    _problem(api.post("/v1/contacts", raw=body), 422)
