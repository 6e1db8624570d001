"""The Idempotency-Key middleware with units of work that commit more than once, fail after committing or
lose to a concurrent copy — on a small app whose handlers do exactly that (no route of ours does today)."""
from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import fakeredis
from chalice.app import Request, Response
from chalice.test import Client
from sqlalchemy import select

from layers.db import idempotency as records
from layers.db.uow import UnitOfWork
from layers.http.chalice_app import CrmChalice
from layers.http.idempotency import request_fingerprint
from layers.http.middleware import ErrorMiddleware, GetResponse, IdempotencyMiddleware
from layers.http.requests import SCOPE_ATTRIBUTE
from layers.queue.receipts import JobReceipt
from shared.clock import utcnow
from shared.context import system_scope
from shared.errors import ValidationFailed
from shared.ids import new_id
from tests.support.api import Reply

OWNER = "01TESTIDEMPOTENCYCOMMITS00"  # a workspace id: the scope the test app gives every request


def _write(key: str) -> None:
    with UnitOfWork(unscoped=True) as uow:
        uow.session.add(JobReceipt(key=key, received_at=utcnow()))
        uow.commit()


def _committed(*keys: str) -> set[str]:
    with UnitOfWork(unscoped=True) as uow:
        return set(uow.session.scalars(select(JobReceipt.key).where(JobReceipt.key.in_(keys))))


def _record(key: str) -> records.IdempotencyRecord | None:
    return records.find(OWNER, key)


class StepsApp:
    """`POST /steps {"name"}` commits step 1, then writes step 2 in a second unit of work (`crash` dies between
    the two, `reject` refuses after step 1); `POST /raced` loses the key to a concurrent copy before it commits."""

    def __init__(self) -> None:
        self.app = app = CrmChalice(app_name="idempotency-test", configure_logs=False)
        self.runs: Counter[str] = Counter()
        app.register_middleware(ErrorMiddleware(), "http")
        app.register_middleware(self._scoped, "http")
        app.register_middleware(IdempotencyMiddleware(app), "http")

        @app.route("/steps", methods=["POST"])
        def steps() -> Response:
            body = self._body()
            name = body["name"]
            self.runs[name] += 1
            _write(f"{name}:1")
            if body.get("reject"):
                raise ValidationFailed("refused after the first step")
            with UnitOfWork(unscoped=True) as uow:
                if body.get("crash"):
                    raise RuntimeError("the process died here")
                uow.session.add(JobReceipt(key=f"{name}:2", received_at=utcnow()))
                uow.commit()
            return Response(body={"name": name}, status_code=201)

        @app.route("/raced", methods=["POST"])
        def raced() -> Response:
            request = self._request()
            name = self._body()["name"]
            self.runs[name] += 1
            fingerprint = request_fingerprint("POST", "/raced", request.raw_body)
            winner = threading.Thread(target=self._commit_winner, args=(request.headers["idempotency-key"],
                                                                         fingerprint))
            winner.start()  # another thread: a concurrent copy, outside this request's deferral
            winner.join(timeout=10)
            _write(f"{name}:mine")
            return Response(body={"name": name, "winner": False}, status_code=201)

    def post(self, path: str, body: dict[str, Any], key: str) -> Reply:
        with Client(self.app) as client:
            response = client.http.post(path, body=json.dumps(body),
                                        headers={"Content-Type": "application/json", "Idempotency-Key": key})
        return Reply(response.status_code, dict(response.headers), response.body)

    def _request(self) -> Request:
        request = self.app.current_request
        assert request is not None
        return request

    def _body(self) -> dict[str, Any]:
        return dict(self._request().json_body)

    @staticmethod
    def _scoped(request: Request, get_response: GetResponse) -> Response:
        setattr(request, SCOPE_ATTRIBUTE, system_scope(OWNER))
        return get_response(request)

    @staticmethod
    def _commit_winner(key: str, fingerprint: str) -> None:
        with UnitOfWork(unscoped=True) as uow:
            records.insert(uow.session, owner=OWNER, key=key, fingerprint=fingerprint, ttl_seconds=60, status=201,
                           headers={"Content-Type": "application/json"}, body='{"winner":true}')
            uow.commit()


def test_a_request_that_commits_then_works_on_commits_early_and_stores_its_answer_at_the_end() -> None:
    # GIVEN a keyed request whose handler commits, then begins a second unit of work
    app, key, name = StepsApp(), f"key-{new_id()}", new_id()
    first = app.post("/steps", {"name": name}, key)
    # THEN both steps committed, and the key's record holds the final answer
    assert first.status == 201 and first.json == {"name": name}
    assert _committed(f"{name}:1", f"{name}:2") == {f"{name}:1", f"{name}:2"}
    record = _record(key)
    assert record is not None and (record.status, json.loads(record.body or "")) == (201, first.json)
    # WHEN repeated THEN replayed, not run again
    again = app.post("/steps", {"name": name}, key)
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true" and again.json == first.json
    assert app.runs[name] == 1


def test_a_request_that_died_after_an_early_commit_is_never_run_again(fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a keyed request that committed its first step, then died before answering
    app, key, name = StepsApp(), f"key-{new_id()}", new_id()
    died = app.post("/steps", {"name": name, "crash": True}, key)
    assert died.status == 500
    # ... and its lease is gone (a killed process's lease expires; this one's failure released it)
    fake_redis.delete(f"idem:{OWNER}:{key}")
    # WHEN the client retries
    retry = app.post("/steps", {"name": name, "crash": True}, key)
    # THEN the retry is told the request took effect (409), and it did not run a second time
    assert retry.status == 409 and retry.json["type"] == "urn:crm:problem:idempotency-outcome-unknown"
    assert app.runs[name] == 1
    assert _committed(f"{name}:1", f"{name}:2") == {f"{name}:1"}
    record = _record(key)
    assert record is not None and record.status is None


def test_a_client_error_after_a_commit_rolls_the_commit_back() -> None:
    # GIVEN a keyed request whose handler commits, then refuses (422)
    app, key, name = StepsApp(), f"key-{new_id()}", new_id()
    first = app.post("/steps", {"name": name, "reject": True}, key)
    # THEN nothing it wrote is kept, no record is written, and a repeat replays the 422 without running again
    assert first.status == 422
    assert _committed(f"{name}:1") == set() and _record(key) is None
    again = app.post("/steps", {"name": name, "reject": True}, key)
    assert again.status == 422 and again.header("Idempotent-Replayed") == "true"
    assert app.runs[name] == 1


def test_a_concurrent_copy_that_committed_first_wins_and_this_one_is_rolled_back() -> None:
    # GIVEN a keyed request that a concurrent copy overtakes: the copy commits the key's record first
    app, key, name = StepsApp(), f"key-{new_id()}", new_id()
    reply = app.post("/raced", {"name": name}, key)
    # THEN this request's own write is rolled back and it answers the copy's response, as a replay
    assert reply.status == 201 and reply.json == {"winner": True}
    assert reply.header("Idempotent-Replayed") == "true"
    assert _committed(f"{name}:mine") == set()
