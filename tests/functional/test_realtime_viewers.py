"""The realtime capability's REST side (who views a record) and the checks the real-time tier asks of it."""
from __future__ import annotations

import time

import fakeredis
import pytest

from functions.realtime import service
from layers.realtime.presence import member, presence_key
from shared.context import Actor, Scope
from shared.errors import ValidationFailed
from tests.support.api import Api
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite


def _viewing(redis: fakeredis.FakeRedis, api: Api, object_type: str, record_id: str, user_id: str,
             connection: str, *, expires_in: float = 30.0) -> None:
    """What a realtime process writes when a person's socket sends `view`."""
    entry = member(connection, user_id, f"{user_id}@example.com", "2026-01-01T00:00:00Z")
    redis.zadd(presence_key(api.workspace_id, object_type, record_id), {entry: time.time() + expires_in})


@pytest.mark.parametrize(("object_type", "body"), [
    ("contacts", {"first_name": "Ada"}), ("companies", {"name": "Acme"})])
def test_viewers_lists_people_once_and_not_expired_entries(
        api: Api, fake_redis: fakeredis.FakeRedis, object_type: str, body: dict[str, str]) -> None:
    # GIVEN a record, a person viewing it in two tabs, another whose socket went away long ago
    record = api.post(f"/v1/{object_type}", body).json["id"]
    _viewing(fake_redis, api, object_type, record, "01JUSERAAAAAAAAAAAAAAAAAAA", "sid-1")
    _viewing(fake_redis, api, object_type, record, "01JUSERAAAAAAAAAAAAAAAAAAA", "sid-2")
    _viewing(fake_redis, api, object_type, record, "01JUSERBBBBBBBBBBBBBBBBBBB", "sid-3", expires_in=-5)

    # WHEN the viewers are asked for
    reply = api.get(f"/v1/{object_type}/{record}/viewers")

    # THEN the live person is listed once
    assert reply.status == 200, reply.json
    assert [v["user_id"] for v in reply.json["data"]] == ["01JUSERAAAAAAAAAAAAAAAAAAA"]


def test_viewers_of_a_missing_record_or_one_of_another_workspace_is_404(api: Api, other_api: Api) -> None:
    # GIVEN a deal-less id and another workspace's contact
    theirs = other_api.post("/v1/contacts", {"first_name": "Theirs"}).json["id"]

    # THEN both are 404 problems, and so is an id that cannot be ours
    assert api.get("/v1/deals/01J9Z8Q4V6W2X3Y5Z7A9B1C3D5/viewers").status == 404
    assert api.get(f"/v1/contacts/{theirs}/viewers").status == 404
    assert api.get("/v1/contacts/not-an-id/viewers").status == 404


def test_a_restricted_member_gets_404_for_a_record_they_may_not_see(
        api: Api, firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN record-level visibility on and a contact the member does not own
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200
    person = invite(api, firebase_issuer)
    hidden = api.post("/v1/contacts", {"first_name": "Hidden"}).json["id"]
    own = person.post("/v1/contacts", {"first_name": "Own"}).json["id"]

    # THEN its viewers are a 404 to the member, their own record's are not
    assert person.get(f"/v1/contacts/{hidden}/viewers").status == 404
    assert person.get(f"/v1/contacts/{own}/viewers").status == 200


def test_the_viewers_routes_are_in_the_openapi_document_with_their_permission() -> None:
    import app
    from layers.http.openapi import build_openapi

    document = build_openapi(app.app)
    for object_type in ("contacts", "companies", "deals"):
        operation = document["paths"][f"/v1/{object_type}/{{record_id}}/viewers"]["get"]
        assert operation["x-permission"] == "read"
        assert "200" in operation["responses"] and "404" in operation["responses"]


def test_subscription_checks_apply_the_webhooks_pattern_and_filter_rules(api: Api) -> None:
    scope = Scope(workspace_id=api.workspace_id, actor=Actor("api_key", "k"), role="admin")
    # GIVEN valid subscriptions
    applied = service.check_subscription(scope, {"event_types": ["contact.*"], "filter": [
        {"filters": [{"property": "email", "operator": "EQ", "value": "a@example.com"}]}]})
    records = service.check_subscription(scope, {"id": "mine", "records": ["contacts/01J9Z8Q4V6W2X3Y5Z7A9B1C3D5"]})

    # THEN they come back as applied (a generated id, the filter's object type)
    assert applied["filter_object_type"] == "contacts" and len(applied["id"]) == 26
    assert records["id"] == "mine" and records["event_types"] == ["*"]

    # AND invalid ones are 422s naming what is wrong
    for invalid, field in (({"event_types": ["contacts.*"]}, "event_types.0"),
                           ({"event_types": ["*"], "filter": [{"filters": [
                               {"property": "email", "operator": "EQ", "value": "x"}]}]}, "filter"),
                           ({"records": ["contacts/nope"]}, "records.0"),
                           ({"surprise": True}, "surprise"),
                           ("everything", "body")):
        with pytest.raises(ValidationFailed) as refused:
            service.check_subscription(scope, invalid)
        assert (refused.value.errors or [{}])[0].get("field") == field, (invalid, refused.value.errors)


def test_owner_lookup_knows_owned_unowned_and_missing_records(api: Api) -> None:
    contact = api.post("/v1/contacts", {"first_name": "Owned"}).json
    assert service.owner_of(api.workspace_id, "contacts", contact["id"]).owner_id == contact["owner_id"]
    assert not service.owner_of(api.workspace_id, "contacts", "01J9Z8Q4V6W2X3Y5Z7A9B1C3D5").exists
    assert not service.owner_of(api.workspace_id, "pipelines", "01J9Z8Q4V6W2X3Y5Z7A9B1C3D5").owned
