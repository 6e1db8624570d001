"""One spelling of object types across the API: plural (`contacts`), as in URLs. Every body and query naming
one takes only that spelling, and the singular is a 422 saying which to use; event types keep their
`<singular>.<verb>` form, and a plural there is a 422 with the hint too (it would otherwise match nothing)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, Reply

PROBLEM_JSON = "application/problem+json"
RULE = {"name": "Rule", "trigger": {"type": "record_created"}, "actions": [{"type": "add_tag", "tag": "x"}]}
LINK = {"from_id": "01JAAAAAAAAAAAAAAAAAAAAAAA", "to_id": "01JBBBBBBBBBBBBBBBBBBBBBBB"}


def _calls(api: Api, spelling: str) -> dict[str, Reply]:
    """Each capability's place that names an object type, called with `spelling` for contacts."""
    return {
        "automations": api.post("/v1/automations", {**RULE, "object_type": spelling}),
        "automations list": api.get(f"/v1/automations?object_type={spelling}"),
        "fields": api.post("/v1/fields", {"object_type": spelling, "key": "tier", "label": "Tier", "type": "text"}),
        "fields list": api.get(f"/v1/fields?object={spelling}"),
        "imports": api.post("/v1/imports", {"object_type": spelling}),
        "exports": api.post("/v1/exports", {"object_type": spelling, "format": "csv"}),
        "merges list": api.get(f"/v1/merges?object={spelling}"),
        "associations batch": api.post("/v1/associations/batch/create", {"inputs": [
            {**LINK, "from_object": spelling, "to_object": "companies"}]}),
    }


def test_the_singular_spelling_is_422_with_a_hint_everywhere(api: Api) -> None:
    # WHEN every capability naming an object type is given `contact`
    replies = _calls(api, "contact")

    # THEN each answers 422 problem+json, saying the type is not known and which spelling to use
    hint = "object type 'contact' is not known; did you mean 'contacts'?"
    batch = replies.pop("associations batch")
    for name, reply in replies.items():
        assert reply.status == 422, (name, reply.raw)
        assert reply.header("Content-Type") == PROBLEM_JSON, name
        assert any(e["message"] == hint for e in _errors(reply)), (name, reply.json)
        assert hint in reply.json["detail"], (name, reply.json)
    # AND a batch input naming it fails alone, with the same hint (a batch answers 207 with each input's result)
    (result,) = batch.json["results"]
    assert result["status"] == 422 and any(e["message"] == hint for e in _errors(batch)), batch.raw


def test_the_plural_spelling_is_accepted_everywhere(api: Api, aws: Any) -> None:
    # WHEN every capability naming an object type is given `contacts`
    replies = _calls(api, "contacts")

    # THEN each takes it (the batch's link fails only because its records do not exist)
    assert {name: reply.status for name, reply in replies.items()} == {
        "automations": 201, "automations list": 200, "fields": 201, "fields list": 200, "imports": 201,
        "exports": 202, "merges list": 200, "associations batch": 207}
    assert replies["associations batch"].json["results"][0]["status"] == 404
    # AND what they stored says `contacts`, as they were asked
    for name in ("automations", "fields", "imports", "exports"):
        assert replies[name].json["object_type"] == "contacts", name
    assert [r["object_type"] for r in replies["automations list"].json["data"]] == ["contacts"]


def test_a_singular_in_an_association_url_is_422_with_a_hint(api: Api) -> None:
    # GIVEN a contact
    person = api.post("/v1/contacts", {"first_name": "Ada"}).json

    # WHEN its links to `company` (not `companies`) are asked for
    reply = api.get(f"/v1/contacts/{person['id']}/associations/company")

    # THEN 422 says which spelling to use
    assert reply.status == 422 and "did you mean 'companies'?" in reply.json["detail"], reply.raw


def test_another_unknown_object_type_gets_the_plain_422(api: Api) -> None:
    # WHEN a type nobody has is named
    reply = api.post("/v1/automations", {**RULE, "object_type": "tickets"})

    # THEN the 422 lists the known ones, without a guess
    assert reply.status == 422
    assert "did you mean" not in reply.raw.decode() and "'contacts'" in reply.json["errors"][0]["message"]


@pytest.mark.parametrize(("place", "body_or_query"), [
    ("webhooks", {"url": "https://example.com/hook", "event_types": ["contacts.*"]}),
    ("events", "?types=deal.stage_changed,contacts.created"),
])
def test_a_plural_event_type_is_422_with_the_singular_hint(api: Api, place: str, body_or_query: Any) -> None:
    # WHEN an event type names its object in the plural
    reply = (api.post("/v1/webhooks", body_or_query) if place == "webhooks"
             else api.get(f"/v1/events{body_or_query}"))

    # THEN 422 says the singular one (event types are `<object>.<verb>` with the singular)
    assert reply.status == 422, reply.raw
    assert "did you mean 'contact." in reply.json["detail"], reply.json


def _errors(reply: Reply) -> list[dict[str, Any]]:
    body = reply.json
    if "errors" in body:
        return body["errors"]  # type: ignore[no-any-return]
    return [e for item in body.get("results", []) for e in (item.get("problem") or {}).get("errors", [])]
