"""`Idempotency-Key` on POST: a keyed request takes effect at most once, and a repeat gets its first answer.

The database is the truth (layers/db/idempotency.py); Redis (layers/cache/idempotency.py) makes the common
cases fast. For a request with a key:

1. Redis: its answer → replay it (422 if the key came with another request); a live lease → 409 with
   Retry-After (the first copy is still running); otherwise take the lease (30 s). Redis away: go on.
2. Unless Redis says the key was never seen, ask the database (a request that died or failed under it may
   have committed): the key's record with a response → replay it; a record without one (the request
   committed, then its process died before its response was stored) → 409 idempotency-outcome-unknown.
   Never a second run. (A first use costs no read: should Redis have lost the key, step 3's insert finds
   the record taken and the request is rolled back and replayed.)
3. Run the request with its commits deferred (layers/db/uow.CommitDeferral): its unit of work flushes and
   keeps its transaction open; the record with the response is inserted into that transaction and committed
   with the effects, so they exist together or not at all. If the insert finds the key taken, a concurrent
   copy committed first (Redis away, or a lease that outlived a dead process): roll back and replay that one.
4. A request that begins a second unit of work after committing makes the first commit early, with a record
   without a response (step 2's case); its response is stored when it is known.
5. A request that committed nothing (a 4xx, a search) keeps its answer in Redis only: running it again is
   harmless. The record is read once more first, in case a concurrent copy did commit meanwhile.
6. A raised error or a 5xx rolls back what was held and frees the lease; a retry runs again (or, if a part
   had committed early, gets step 2's 409).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from chalice.app import Response
from sqlalchemy.orm import Session

from layers.cache import idempotency as leases
from layers.cache.idempotency import StoredResponse
from layers.db import idempotency as records
from layers.db.uow import CommitDeferral
from layers.http.problems import problem_response
from shared.errors import AppError, IdempotencyInProgress, IdempotencyKeyReused, IdempotencyOutcomeUnknown
from shared.settings import get_settings


def request_fingerprint(method: str, path: str, body: bytes | str | None) -> str:
    """What a repeat must share to be the same request: method, path and body."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + raw).hexdigest()


class KeyedRequest:
    def __init__(self, owner: str, key: str, fingerprint: str, request_id: str) -> None:
        self.owner = owner
        self.key = key
        self.fingerprint = fingerprint
        self.request_id = request_id
        self._lease: str | None = None

    def respond(self, run: Callable[[], Response]) -> Response:
        claim = leases.claim(self.owner, self.key, self.fingerprint)
        if claim.outcome == "mismatch":
            raise _reused()
        if claim.outcome == "running":
            raise IdempotencyInProgress("retry when the first request has answered", headers={"Retry-After": "1"})
        if claim.outcome == "replay" and claim.stored is not None:
            return _replay(claim.stored)
        self._lease = claim.lease
        try:
            earlier = None if claim.first_use else records.find(self.owner, self.key)
            if earlier is not None:
                return self._answer(earlier)
            return self._run(run)
        except BaseException:
            leases.release(self.owner, self.key, self._lease)
            raise

    def _run(self, run: Callable[[], Response]) -> Response:
        deferral = CommitDeferral(on_early_commit=self._insert)
        try:
            try:
                with deferral.active():
                    response = run()
            except records.KeyTaken:
                deferral.rollback()
                return self._answer_winner()
            except AppError as error:
                deferral.rollback()
                if error.status >= 500:
                    raise
                # A client error is the request's answer: replay it too.
                answered = self._finish(deferral, _stored(problem_response(error, self.request_id)))
                if answered is not None:
                    return answered
                raise
            if response.status_code >= 500:
                deferral.rollback()
                leases.release(self.owner, self.key, self._lease)
                return response
            return self._finish(deferral, _stored(response)) or response
        finally:
            deferral.rollback()  # whatever is still held (an unexpected error) is not kept

    def _finish(self, deferral: CommitDeferral, stored: StoredResponse) -> Response | None:
        """Make `stored` the key's answer; returns another copy's answer instead when that one won."""
        if deferral.holding:
            try:
                deferral.commit(lambda session: self._save(session, stored, exists=deferral.committed_early))
            except records.KeyTaken:
                return self._answer_winner()
        elif deferral.committed_early:
            records.store_response(owner=self.owner, key=self.key, status=stored.status, headers=stored.headers,
                                   body=stored.body)
        else:
            winner = records.find(self.owner, self.key)
            if winner is not None:
                return self._answer(winner)
            leases.remember_own(self.owner, self.key, self.fingerprint, stored, self._lease)
            return None
        leases.remember(self.owner, self.key, self.fingerprint, stored)
        return None

    def _insert(self, session: Session) -> None:
        records.insert(session, owner=self.owner, key=self.key, fingerprint=self.fingerprint,
                       ttl_seconds=get_settings().idempotency_ttl_seconds)

    def _save(self, session: Session, stored: StoredResponse, *, exists: bool) -> None:
        if exists:
            records.set_response(session, owner=self.owner, key=self.key, status=stored.status,
                                 headers=stored.headers, body=stored.body)
        else:
            records.insert(session, owner=self.owner, key=self.key, fingerprint=self.fingerprint,
                           ttl_seconds=get_settings().idempotency_ttl_seconds, status=stored.status,
                           headers=stored.headers, body=stored.body)

    def _answer_winner(self) -> Response:
        winner = records.find(self.owner, self.key)
        if winner is None:  # an expired record (now deleted) held the key: nothing to replay, the retry runs
            raise IdempotencyInProgress("retry: this Idempotency-Key's earlier use has just expired",
                                        headers={"Retry-After": "1"})
        return self._answer(winner)

    def _answer(self, record: records.IdempotencyRecord) -> Response:
        """Answer from the database's record (and let Redis replay it from now on)."""
        if record.fingerprint != self.fingerprint:
            leases.release(self.owner, self.key, self._lease)
            raise _reused()
        if record.status is None:
            leases.release(self.owner, self.key, self._lease)
            raise IdempotencyOutcomeUnknown(
                "a request with this Idempotency-Key took effect, but its answer was lost; fetch the resource "
                "it changed instead of repeating it")
        stored = StoredResponse(record.status, dict(record.headers or {}), record.body or "")
        leases.remember(self.owner, self.key, self.fingerprint, stored)
        return _replay(stored)


def _reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused("this Idempotency-Key was first used with a different request")


def _replay(stored: StoredResponse) -> Response:
    headers: dict[str, str | list[str]] = {**stored.headers, "Idempotent-Replayed": "true"}
    return Response(body=stored.body, status_code=stored.status, headers=headers)


def _stored(response: Response) -> StoredResponse:
    body = response.body if isinstance(response.body, str) else json.dumps(response.body, default=str)
    headers = {k: str(v) for k, v in response.headers.items() if k.lower() in ("content-type", "etag", "location")}
    return StoredResponse(response.status_code, headers, body)
