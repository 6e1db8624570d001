"""`Idempotency-Key` on POST: replays, reuse with another body, in-flight repeats, per-workspace keys,
a repeat after its first request died or Redis forgot it, and what happens without Redis."""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import fakeredis
import pytest
from sqlalchemy import select, update

from layers.cache import idempotency as leases
from layers.cache.client import make_client, use_redis
from layers.db.idempotency import IdempotencyRecord
from layers.db.uow import UnitOfWork
from layers.http.idempotency import request_fingerprint
from layers.queue.outbox import OutboxEvent
from shared.clock import utcnow
from shared.context import system_scope
from shared.ids import new_id
from tests.support.api import Api, Reply

CONTACT = {"first_name": "Ada", "email": "ada@example.com"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{new_id()}"}


def contact_count(api: Api) -> int:
    return len(api.get("/v1/contacts?limit=200&include_archived=true").json["data"])


def assert_problem(reply: Reply, status: int, slug: str | None = None) -> None:
    assert reply.status == status, reply.json
    assert reply.header("Content-Type") == "application/problem+json"
    if slug:
        assert reply.json["type"] == f"urn:crm:problem:{slug}"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_down(fake_redis: fakeredis.FakeRedis) -> Iterator[None]:
    """Redis unreachable: the production client, pointed at a port nobody listens on."""
    dead = make_client(f"redis://127.0.0.1:{closed_port()}/0")
    use_redis(dead)
    yield
    use_redis(fake_redis)
    dead.close()


def test_repeat_with_same_key_and_body_replays_the_first_answer_and_writes_once(api: Api) -> None:
    # GIVEN a create carrying an Idempotency-Key
    headers = key()
    first = api.post("/v1/contacts", CONTACT, headers=headers)
    # WHEN the client repeats it exactly
    second = api.post("/v1/contacts", CONTACT, headers=headers)
    # THEN the repeat replays status, body, ETag and Location, says so, and only one contact exists
    assert first.status == 201 and first.header("Idempotent-Replayed") is None
    assert second.status == 201
    assert second.header("Idempotent-Replayed") == "true"
    assert second.json == first.json
    assert second.header("ETag") == first.header("ETag") is not None
    assert second.header("Location") == first.header("Location")
    assert contact_count(api) == 1


def test_same_key_with_a_different_body_is_422(api: Api) -> None:
    # GIVEN a key already used for one create
    headers = key()
    first = api.post("/v1/contacts", CONTACT, headers=headers)
    # WHEN it is reused with another body, and on another route
    other_body = api.post("/v1/contacts", {"first_name": "Grace"}, headers=headers)
    other_route = api.post("/v1/companies", CONTACT, headers=headers)
    # THEN both are 422 idempotency-key-reused and nothing more was written
    assert first.status == 201
    assert_problem(other_body, 422, "idempotency-key-reused")
    assert_problem(other_route, 422, "idempotency-key-reused")
    assert contact_count(api) == 1
    assert api.get("/v1/companies").json["data"] == []


class GatedRedis(fakeredis.FakeRedis):
    """Holds the record cache's scripts (the contact's pending mark, before the commit), so the first
    request stays in flight until the test releases it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reached = threading.Event()
        self.release = threading.Event()

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if numkeys and str(keys_and_args[0]).startswith("rec:"):
            self.reached.set()
            self.release.wait(timeout=10)
        return super().evalsha(sha, numkeys, *keys_and_args)


def test_repeat_while_the_first_request_is_running_is_409(api: Api) -> None:
    # GIVEN a create with an Idempotency-Key that is still running (held after its commit)
    gated = GatedRedis(server=fakeredis.FakeServer(), decode_responses=True)
    use_redis(gated)
    headers = key()
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(api.post, "/v1/contacts", CONTACT, headers=headers)
        try:
            assert gated.reached.wait(timeout=5), "the first request never reached the cache fill"
            # WHEN the client repeats it meanwhile
            during = api.post("/v1/contacts", CONTACT, headers=headers)
        finally:
            gated.release.set()
        first_reply = first.result(timeout=10)
    after = api.post("/v1/contacts", CONTACT, headers=headers)
    # THEN the repeat is 409 with Retry-After; the first completes; a later repeat replays it; one row
    assert_problem(during, 409, "idempotency-in-progress")
    assert during.header("Retry-After") is not None
    assert first_reply.status == 201
    assert after.status == 201 and after.header("Idempotent-Replayed") == "true"
    assert after.json == first_reply.json
    assert contact_count(api) == 1


def test_a_first_request_that_failed_validation_replays_the_same_422(api: Api) -> None:
    # GIVEN a create that failed validation under a key
    headers = key()
    body = {"first_name": "Ada", "email": "not-an-email"}
    first = api.post("/v1/contacts", body, headers=headers)
    # WHEN it is repeated with the same key and body
    second = api.post("/v1/contacts", body, headers=headers)
    # THEN the same 422 comes back, marked as replayed, and nothing was written
    assert_problem(first, 422, "validation-error")
    assert second.status == 422 and second.header("Idempotent-Replayed") == "true"
    assert second.json == first.json
    assert second.header("Content-Type") == "application/problem+json"
    assert contact_count(api) == 0


def test_keys_are_scoped_to_the_workspace(api: Api, other_api: Api) -> None:
    # GIVEN two workspaces
    headers = key()
    # WHEN each creates with the same key and body
    mine = api.post("/v1/contacts", CONTACT, headers=headers)
    theirs = other_api.post("/v1/contacts", CONTACT, headers=headers)
    # THEN both are real creates of distinct records, one in each workspace
    assert mine.status == 201 and theirs.status == 201
    assert theirs.header("Idempotent-Replayed") is None
    assert mine.json["id"] != theirs.json["id"]
    assert contact_count(api) == 1 and contact_count(other_api) == 1


def test_overlong_key_is_400(api: Api) -> None:
    # GIVEN a key over 255 characters
    # WHEN it is used
    reply = api.post("/v1/contacts", CONTACT, headers={"Idempotency-Key": "k" * 256})
    # THEN 400 and nothing was written
    assert_problem(reply, 400)
    assert contact_count(api) == 0


@pytest.mark.usefixtures("redis_down")
def test_without_redis_a_keyed_post_runs_once_on_the_database_alone(api: Api) -> None:
    # GIVEN Redis is unreachable
    # WHEN a create carries an Idempotency-Key, is repeated, and the key is reused with another body
    headers = key()
    first = api.post("/v1/contacts", {"first_name": "Ada"}, headers=headers)
    again = api.post("/v1/contacts", {"first_name": "Ada"}, headers=headers)
    other = api.post("/v1/contacts", {"first_name": "Grace"}, headers=headers)
    # THEN the first ran, the repeat replays it from the database's record, the reuse is 422; one contact
    assert first.status == 201 and first.header("Idempotent-Replayed") is None
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true"
    assert again.json == first.json and again.header("ETag") == first.header("ETag")
    assert_problem(other, 422, "idempotency-key-reused")
    assert contact_count(api) == 1


def test_batch_create_honours_the_key(api: Api) -> None:
    # GIVEN a batch create under a key
    headers = key()
    body = {"inputs": [{"first_name": "A"}, {"first_name": "B"}, {"email": "bad"}]}
    first = api.post("/v1/contacts/batch/create", body, headers=headers)
    # WHEN it is repeated
    second = api.post("/v1/contacts/batch/create", body, headers=headers)
    # THEN the same 207 and results are replayed, and the two good inputs were created once
    assert first.status == 207
    assert second.status == 207 and second.header("Idempotent-Replayed") == "true"
    assert second.json == first.json
    assert contact_count(api) == 2


def test_search_honours_the_key(api: Api) -> None:
    # GIVEN a search under a key
    api.post("/v1/contacts", CONTACT)
    headers = key()
    query = {"filter_groups": [{"filters": [{"property": "email", "operator": "EQ", "value": "ada@example.com"}]}]}
    first = api.post("/v1/contacts/search", query, headers=headers)
    # WHEN it is repeated, and the key is reused for another search
    second = api.post("/v1/contacts/search", query, headers=headers)
    other = api.post("/v1/contacts/search", {"query": "grace"}, headers=headers)
    # THEN the repeat replays the first page; the other search is 422
    assert first.status == 200 and len(first.json["data"]) == 1
    assert second.status == 200 and second.header("Idempotent-Replayed") == "true"
    assert second.json == first.json
    assert_problem(other, 422, "idempotency-key-reused")


# ---- the database's record ------------------------------------------------------------------------------
def lease_key(api: Api, headers: dict[str, str]) -> str:
    return f"idem:{api.workspace_id}:{headers['Idempotency-Key']}"


def records_of(api: Api) -> list[IdempotencyRecord]:
    with UnitOfWork(unscoped=True) as uow:
        return list(uow.session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.owner == api.workspace_id)))


def events_of(api: Api, record_id: str) -> list[str]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return list(uow.session.scalars(select(OutboxEvent.event_type).where(OutboxEvent.record_id == record_id)))


def test_a_keyed_write_commits_its_record_with_its_response(api: Api) -> None:
    # GIVEN a keyed create, a keyed create that fails validation, and a keyed search
    created = api.post("/v1/contacts", CONTACT, headers=key())
    api.post("/v1/contacts", {"email": "not-an-email"}, headers=key())
    api.post("/v1/contacts/search", {"query": "ada"}, headers=key())
    # THEN only the create has a record in the database, holding exactly what it answered
    [record] = records_of(api)
    assert (record.status, json.loads(record.body or "")) == (201, created.json)
    assert record.headers is not None and record.headers["Location"] == created.header("Location")
    assert record.expires_at > utcnow() + timedelta(hours=23)


def test_a_committed_request_whose_answer_never_reached_redis_is_replayed_not_run_again(
        api: Api, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a keyed create that committed, whose process died before Redis had its answer and whose lease
    # then expired (Redis holds nothing for the key)
    headers = key()
    first = api.post("/v1/contacts", {"first_name": "Ada"}, headers=headers)
    fake_redis.delete(lease_key(api, headers))
    # WHEN the client retries with the same key
    retry = api.post("/v1/contacts", {"first_name": "Ada"}, headers=headers)
    # THEN the retry replays the committed answer: one contact, one event
    assert first.status == 201
    assert retry.status == 201 and retry.header("Idempotent-Replayed") == "true"
    assert retry.json == first.json and retry.header("Location") == first.header("Location")
    assert contact_count(api) == 1
    assert events_of(api, first.json["id"]) == ["contact.created"]


def test_a_lease_left_by_a_dead_process_frees_the_key_within_30_seconds(
        api: Api, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a keyed create whose process took the lease and died before committing anything
    headers = key()
    body = {"first_name": "Ada"}
    fingerprint = request_fingerprint("POST", "/v1/contacts", json.dumps(body).encode())
    assert leases.claim(api.workspace_id, headers["Idempotency-Key"], fingerprint).outcome == "leased"
    # WHEN the client retries while the lease lives
    during = api.post("/v1/contacts", body, headers=headers)
    # THEN it is told to retry, and the lease lives at most 30 s
    assert_problem(during, 409, "idempotency-in-progress")
    assert during.header("Retry-After") is not None
    assert 0 < fake_redis.ttl(lease_key(api, headers)) <= 30
    # WHEN the lease has expired and the client retries again
    fake_redis.delete(lease_key(api, headers))
    after = api.post("/v1/contacts", body, headers=headers)
    # THEN the request runs (nothing had committed), once
    assert after.status == 201 and after.header("Idempotent-Replayed") is None
    assert contact_count(api) == 1


def test_after_redis_forgot_a_key_its_repeat_is_still_replayed_and_its_reuse_still_422(
        api: Api, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a keyed create, then Redis lost everything (a restart without persistence)
    headers = key()
    first = api.post("/v1/contacts", {"first_name": "Ada"}, headers=headers)
    fake_redis.flushall()
    # WHEN the request is repeated, and the key is reused with another body
    again = api.post("/v1/contacts", {"first_name": "Ada"}, headers=headers)
    fake_redis.flushall()
    other = api.post("/v1/contacts", {"first_name": "Grace"}, headers=headers)
    # THEN the database's record decides: the repeat replays (its own run rolled back), the reuse is refused
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true" and again.json == first.json
    assert_problem(other, 422, "idempotency-key-reused")
    assert contact_count(api) == 1
    assert events_of(api, first.json["id"]) == ["contact.created"]


def test_an_expired_record_frees_its_key(api: Api, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a keyed create whose record has expired (24 h passed; the hourly purge has not run yet)
    headers = key()
    assert api.post("/v1/contacts", {"first_name": "Ada"}, headers=headers).status == 201
    fake_redis.delete(lease_key(api, headers))
    with UnitOfWork(unscoped=True) as uow:
        uow.session.execute(update(IdempotencyRecord).where(IdempotencyRecord.owner == api.workspace_id)
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
        uow.commit()
    # WHEN the key is used for another request
    reused = api.post("/v1/contacts", {"first_name": "Grace"}, headers=headers)
    # THEN it runs as a new request, and the key's record is now the new one
    assert reused.status == 201 and reused.header("Idempotent-Replayed") is None
    assert contact_count(api) == 2
    [record] = records_of(api)
    assert json.loads(record.body or "")["first_name"] == "Grace"


def test_an_answer_only_redis_keeps_never_replaces_a_concurrent_copys() -> None:
    # GIVEN a request holding a key's lease, which lapsed, and a copy that then stored its (committed) answer
    owner, idempotency_key = new_id(), f"key-{new_id()}"
    mine = leases.claim(owner, idempotency_key, "fp")
    leases.remember(owner, idempotency_key, "fp", leases.StoredResponse(201, {}, "theirs"))
    # WHEN the first request stores the client error it ended with
    leases.remember_own(owner, idempotency_key, "fp", leases.StoredResponse(409, {}, "mine"), mine.lease)
    # THEN the copy's answer is what repeats get
    replay = leases.claim(owner, idempotency_key, "fp")
    assert replay.outcome == "replay" and replay.stored == leases.StoredResponse(201, {}, "theirs")
