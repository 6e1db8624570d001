"""ETags on single-record answers; If-None-Match on GET (304) and If-Match on PATCH/DELETE (412)."""
from __future__ import annotations

import pytest

from tests.support.api import Api, Reply


def create(api: Api) -> Reply:
    reply = api.post("/v1/contacts", {"first_name": "Ada", "email": "ada@example.com"})
    assert reply.status == 201, reply.json
    return reply


def assert_problem(reply: Reply, status: int) -> None:
    assert reply.status == status, reply.json
    assert reply.header("Content-Type") == "application/problem+json"


def test_every_single_record_answer_carries_an_etag_that_moves_with_the_record(api: Api) -> None:
    # GIVEN a contact created, read, updated, archived and restored
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    read = api.get(path)
    updated = api.patch(path, {"job_title": "Analyst"})
    read_after_update = api.get(path)
    assert api.delete(path).status == 204
    restored = api.post(f"{path}/restore")
    read_after_restore = api.get(path)
    # THEN each answer has an ETag; it changes with every change and matches what a read shows
    tags = [r.header("ETag") for r in (created, read, updated, read_after_update, restored, read_after_restore)]
    assert all(tags), tags
    assert tags[0] == tags[1]
    assert tags[2] == tags[3] != tags[1]
    assert tags[4] == tags[5] != tags[3]


def test_if_none_match_with_the_current_etag_is_304_without_a_body(api: Api) -> None:
    # GIVEN a contact and its current ETag
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    tag = api.get(path).header("ETag")
    # WHEN it is read again with If-None-Match (plain, weak, and in a list)
    plain = api.get(path, headers={"If-None-Match": tag})
    weak = api.get(path, headers={"If-None-Match": f"W/{tag}"})
    listed = api.get(path, headers={"If-None-Match": f'"v999", {tag}'})
    # THEN 304 with the ETag and no body
    for reply in (plain, weak, listed):
        assert reply.status == 304
        assert reply.raw == b""
        assert reply.header("ETag") == tag


def test_if_none_match_with_a_stale_etag_is_200(api: Api) -> None:
    # GIVEN a contact read, then changed
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    stale = created.header("ETag")
    api.patch(path, {"job_title": "Analyst"})
    # WHEN it is read with the old ETag
    reply = api.get(path, headers={"If-None-Match": stale})
    # THEN the new version comes back in full
    assert reply.status == 200
    assert reply.json["job_title"] == "Analyst"
    assert reply.header("ETag") != stale


@pytest.mark.parametrize("if_match", ['"v999"', "garbage", '"nope"', "W/\"x1\""])
def test_patch_with_a_stale_or_unknown_if_match_is_412_and_changes_nothing(api: Api, if_match: str) -> None:
    # GIVEN a contact
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    # WHEN it is patched with an If-Match that is not its current version
    reply = api.patch(path, {"job_title": "Analyst"}, headers={"If-Match": if_match})
    # THEN 412 and the record is untouched
    assert_problem(reply, 412)
    after = api.get(path)
    assert after.json["job_title"] is None
    assert after.header("ETag") == created.header("ETag")


def test_patch_after_someone_else_changed_it_is_412(api: Api) -> None:
    # GIVEN a client that read a contact, then another client changed it
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    seen = created.header("ETag")
    api.patch(path, {"job_title": "Engineer"})
    # WHEN the first client patches with what it saw
    reply = api.patch(path, {"job_title": "Analyst"}, headers={"If-Match": seen})
    # THEN 412 and the other client's change stands
    assert_problem(reply, 412)
    assert api.get(path).json["job_title"] == "Engineer"


def test_delete_with_a_stale_if_match_is_412_and_does_not_archive(api: Api) -> None:
    # GIVEN a contact whose first ETag went stale
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    api.patch(path, {"job_title": "Engineer"})
    # WHEN it is deleted with the stale ETag, and with garbage
    stale = api.delete(path, headers={"If-Match": created.header("ETag")})
    garbage = api.delete(path, headers={"If-Match": "garbage"})
    # THEN both are 412 and it is still there
    assert_problem(stale, 412)
    assert_problem(garbage, 412)
    assert api.get(path).status == 200


@pytest.mark.parametrize("current", [True, False], ids=["current-etag", "star"])
def test_patch_and_delete_with_a_matching_if_match_succeed(api: Api, current: bool) -> None:
    # GIVEN a contact and its current ETag
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    # WHEN it is patched and then deleted with If-Match: the current ETag (or `*`)
    first = created.header("ETag") if current else "*"
    patched = api.patch(path, {"job_title": "Analyst"}, headers={"If-Match": first})
    second = patched.header("ETag") if current else "*"
    deleted = api.delete(path, headers={"If-Match": second})
    # THEN both succeed, the PATCH answers the new ETag, and the contact is archived
    assert patched.status == 200 and patched.json["job_title"] == "Analyst"
    assert patched.header("ETag") != created.header("ETag")
    assert deleted.status == 204
    assert api.get(path).status == 404
    assert api.get(f"{path}?include_archived=true").json["archived_at"] is not None


def test_conditional_reads_are_per_workspace(api: Api, other_api: Api) -> None:
    # GIVEN a contact in one workspace
    created = create(api)
    path = f"/v1/contacts/{created.json['id']}"
    # WHEN another workspace reads it with a matching If-None-Match, or patches it with If-Match: *
    read = other_api.get(path, headers={"If-None-Match": created.header("ETag") or ""})
    patched = other_api.patch(path, {"job_title": "X"}, headers={"If-Match": "*"})
    # THEN both are 404 (never 304/412, which would reveal the record exists)
    assert_problem(read, 404)
    assert_problem(patched, 404)
