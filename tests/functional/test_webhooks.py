"""Webhooks over HTTP and through the jobs: a real receiver on 127.0.0.1 checks every signature.

Time is driven without sleeping: early retries are deliver jobs sent with an SQS delay, which the inline
queue holds until `jobs.run_delayed()`; for the sweep's retries, a test moves a delivery's `next_attempt_at`
(or its first attempt) into the past in the database, then runs the retry sweep's schedule handler.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from random import Random
from typing import Any

import pytest
from sqlalchemy import select, update

from functions.webhooks import rules, service
from functions.webhooks.models import WebhookDelivery, WebhookSubscription
from functions.webhooks.schemas import DeliverJob
from functions.webhooks.signing import verify
from layers.db.uow import UnitOfWork
from layers.runtime.inline import InlineQueue
from shared.clock import utcnow
from shared.context import system_scope
from shared.errors import NotFound
from tests.support.api import Api, Reply
from tiers.invoke import invoke_handler

PROBLEM_JSON = "application/problem+json"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server in a thread: answers each POST with the next scripted status (then `default`)."""

    script: list[int] = field(default_factory=list)
    default: int = 200
    location: str | None = None  # sent with 3xx answers
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(Received(self.path, dict(self.headers.items()), self.rfile.read(length)))
                status = receiver.script.pop(0) if receiver.script else receiver.default
                self.send_response(status)
                if receiver.location and 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                reply = b'{"ok": true}' if status < 300 else b"x" * 5000
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def do_GET(self) -> None:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), b""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/crm"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()
    # Deliveries this test left pending must not be swept into a later test's receiver.
    with UnitOfWork(unscoped=True) as uow:
        uow.session.execute(update(WebhookDelivery).where(WebhookDelivery.status == "pending")
                            .values(status="failed", next_attempt_at=None))
        uow.commit()


def subscribe(api: Api, url: str, event_types: list[str], **extra: Any) -> dict[str, Any]:
    reply = api.post("/v1/webhooks", {"url": url, "event_types": event_types, **extra})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def deliveries(api: Api, webhook_id: str, query: str = "") -> list[dict[str, Any]]:
    reply = api.get(f"/v1/webhooks/{webhook_id}/deliveries{query}")
    assert reply.status == 200, reply.raw
    return reply.json["data"]  # type: ignore[no-any-return]


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    return reply.json  # type: ignore[no-any-return]


def make_due(workspace_id: str, delivery_id: str, *, first_attempt_hours_ago: float | None = None) -> None:
    """Move a delivery's next attempt (and optionally its first attempt) into the past, as if its backoff
    were one for the sweep (or its delayed job were lost)."""
    with UnitOfWork(system_scope(workspace_id)) as uow:
        row = uow.session.get(WebhookDelivery, delivery_id)
        assert row is not None
        row.next_attempt_at, row.sweep_after = utcnow() - timedelta(seconds=1), None
        if first_attempt_hours_ago is not None:
            row.first_attempt_at = utcnow() - timedelta(hours=first_attempt_hours_ago)
        uow.commit()


def sweep(jobs: InlineQueue) -> None:
    """Run the retry sweep's schedule handler, then whatever it enqueued."""
    jobs.send(json.dumps({"handler": "webhooks_retry_due"}))
    jobs.run()


def verified(request: Received, secret: str) -> bool:
    return verify(secret, request.headers["Webhook-Signature"], request.body)


# ---- subscriptions -----------------------------------------------------------------------------------
def test_create_shows_the_secret_once(api: Api, receiver: Receiver) -> None:
    # GIVEN a new webhook
    created = subscribe(api, receiver.url, ["contact.created"], description="CRM sync")

    # WHEN it is read back, alone and in the list
    got = api.get(f"/v1/webhooks/{created['id']}")
    listed = api.get("/v1/webhooks")

    # THEN the secret was in the create answer only
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert got.status == 200 and "secret" not in got.json and created["secret"] not in got.raw.decode()
    assert got.json["status"] == "healthy" and got.json["active"] is True
    assert [w["id"] for w in listed.json["data"]] == [created["id"]]
    assert created["secret"] not in listed.raw.decode()


def test_update_and_delete(api: Api, receiver: Receiver) -> None:
    # GIVEN a webhook
    hook = subscribe(api, receiver.url, ["contact.created"], description="first")

    # WHEN it is changed, then deleted
    changed = api.patch(f"/v1/webhooks/{hook['id']}", {"event_types": ["deal.*"], "description": None,
                                                         "active": False})
    deleted = api.delete(f"/v1/webhooks/{hook['id']}")

    # THEN the change shows, and the webhook is gone
    assert changed.status == 200, changed.raw
    assert changed.json["event_types"] == ["deal.*"] and changed.json["description"] is None
    assert changed.json["active"] is False
    assert deleted.status == 204
    assert_problem(api.get(f"/v1/webhooks/{hook['id']}"), 404)


@pytest.mark.parametrize(("body", "field"), [
    ({"event_types": ["contact.created"]}, "url"),
    ({"url": "http://127.0.0.1:9/x", "event_types": []}, "event_types"),
    ({"url": "http://127.0.0.1:9/x", "event_types": ["Contact Created"]}, "event_types.0"),
    ({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "colour": "red"}, "colour"),
    ({"url": "ftp://127.0.0.1/x", "event_types": ["*"]}, "url"),
    ({"url": "http://user:pw@127.0.0.1:9/x", "event_types": ["*"]}, "url"),
    ({"url": "http://10.0.0.1/x", "event_types": ["*"]}, "url"),
    ({"url": "http://169.254.169.254/latest/meta-data", "event_types": ["*"]}, "url"),
    ({"url": "http://127.0.0.1:9/x", "event_types": ["*"],
      "filter": [{"filters": [{"property": "email", "operator": "EQ", "value": "a@b.c"}]}]}, "filter"),
    ({"url": "http://127.0.0.1:9/x", "event_types": ["contact.*"],
      "filter": [{"filters": [{"property": "no_such_property", "operator": "EQ", "value": 1}]}]}, "filter"),
    ({"url": "http://127.0.0.1:9/x", "event_types": ["team.created"],
      "filter": [{"filters": [{"property": "name", "operator": "EQ", "value": "x"}]}]}, "filter"),
])
def test_bad_input_is_a_problem_and_writes_nothing(api: Api, body: dict[str, Any], field: str) -> None:
    # GIVEN a workspace without webhooks
    # WHEN a bad webhook is registered
    reply = api.post("/v1/webhooks", body)

    # THEN it is a 422 naming the field, and nothing was written
    problem = assert_problem(reply, 422)
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert api.get("/v1/webhooks").json["data"] == []


def test_malformed_json_and_bad_patch_change_nothing(api: Api, receiver: Receiver) -> None:
    # GIVEN a webhook
    hook = subscribe(api, receiver.url, ["contact.created"])

    # WHEN malformed or invalid writes arrive
    malformed = api.post("/v1/webhooks", raw="{nope")
    bad_url = api.patch(f"/v1/webhooks/{hook['id']}", {"url": "https://[::1]/x"})
    null_types = api.patch(f"/v1/webhooks/{hook['id']}", {"event_types": None})
    bad_query = api.get(f"/v1/webhooks/{hook['id']}/deliveries?status=lost")

    # THEN each is a problem, and the webhook is unchanged
    assert_problem(malformed, 400)
    assert assert_problem(bad_url, 422)["errors"][0]["field"] == "url"
    assert_problem(null_types, 422)
    assert_problem(bad_query, 422)
    got = api.get(f"/v1/webhooks/{hook['id']}").json
    assert got["url"] == receiver.url and got["event_types"] == ["contact.created"]
    assert len(api.get("/v1/webhooks").json["data"]) == 1


# ---- deliveries --------------------------------------------------------------------------------------
def test_an_event_is_delivered_signed(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a webhook on contact.created
    hook = subscribe(api, receiver.url, ["contact.created"])

    # WHEN a contact is created and the jobs run
    contact = api.post("/v1/contacts", {"first_name": "Ada", "email": "ada@example.com"}).json
    jobs.run()

    # THEN the receiver got one signed delivery of the event, and the log shows it succeeded
    (request,) = receiver.requests
    assert verified(request, hook["secret"])
    body = request.json
    assert request.headers["Webhook-Id"] == body["id"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "crm-webhooks/1"
    assert request.headers["Webhook-Timestamp"] == request.headers["Webhook-Signature"].split(",")[0][2:]
    assert request.path == "/hooks/crm"
    event = body["event"]
    assert event["type"] == "contact.created" and event["record_id"] == contact["id"]
    assert event["workspace_id"] == api.workspace_id and event["sequence"] >= 1
    (logged,) = deliveries(api, hook["id"])
    assert logged["id"] == body["id"] and logged["status"] == "succeeded" and logged["attempt_count"] == 1
    detail = api.get(f"/v1/webhooks/{hook['id']}/deliveries/{logged['id']}").json
    (attempt,) = detail["attempts"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["latency_ms"] >= 0
    assert attempt["response_excerpt"] == '{"ok": true}'
    assert detail["event"] == event and detail["trigger"] == "event"


def test_failures_are_retried_with_the_same_id_until_success(api: Api, jobs: InlineQueue,
                                                              receiver: Receiver) -> None:
    # GIVEN a receiver that fails twice, then answers 200
    receiver.script = [500, 503]
    hook = subscribe(api, receiver.url, ["contact.*"])

    # WHEN an event is sent, and each retry's delay passes
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (first,) = deliveries(api, hook["id"])
    for _ in range(2):
        jobs.run_delayed()

    # THEN three attempts were made with one Webhook-Id, the last succeeded
    assert len(receiver.requests) == 3
    assert {r.headers["Webhook-Id"] for r in receiver.requests} == {first["id"]}
    assert all(verified(r, hook["secret"]) for r in receiver.requests)
    assert first["status"] == "pending" and first["next_attempt_at"] is not None
    assert first["last_status_code"] == 500
    detail = api.get(f"/v1/webhooks/{hook['id']}/deliveries/{first['id']}").json
    assert detail["status"] == "succeeded" and detail["attempt_count"] == 3 and detail["next_attempt_at"] is None
    assert [a["status_code"] for a in detail["attempts"]] == [500, 503, 200]
    assert len(detail["attempts"][0]["response_excerpt"]) <= 1024
    assert detail["attempts"][0]["error"]


def _deliver_jobs(jobs: InlineQueue) -> list[tuple[int, dict[str, Any]]]:
    """The delayed deliver jobs the inline queue holds: (delay in seconds, payload)."""
    return [(d.delay_seconds, json.loads(d.message.body)["payload"]) for d in jobs.delayed
            if json.loads(d.message.body)["handler"] == "webhooks_deliver"]


def test_the_first_retry_is_a_job_delayed_by_seconds_which_the_sweep_leaves_alone(
        api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a receiver that fails once
    receiver.script = [500]
    hook = subscribe(api, receiver.url, ["contact.created"])

    # WHEN an event is delivered
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()

    # THEN the retry is a deliver job SQS holds back for at most 30 s, planned for then
    (row,) = deliveries(api, hook["id"])
    ((delay, payload),) = _deliver_jobs(jobs)
    assert 0 <= delay <= 30 and payload == {"workspace_id": api.workspace_id, "delivery_id": row["id"], "attempt": 1}
    assert row["next_attempt_at"] is not None

    # AND WHEN the sweep runs with the retry due, while that job is still queued
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.get(WebhookDelivery, row["id"]).next_attempt_at = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
        uow.commit()
    claimed = service.retry_due()

    # THEN it leaves the delivery to the job, which makes the second attempt once its delay passed
    assert claimed == 0 and len(receiver.requests) == 1
    jobs.run_delayed()
    assert len(receiver.requests) == 2
    assert deliveries(api, hook["id"])[0]["status"] == "succeeded"


def test_the_sweep_takes_over_a_retry_whose_delayed_job_was_lost(api: Api, jobs: InlineQueue,
                                                                 receiver: Receiver) -> None:
    # GIVEN a failed first attempt whose delayed retry job is lost
    receiver.script = [500]
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    jobs.delayed.clear()

    # WHEN the sweep runs after the job's lease is over
    later = utcnow() + rules.QUEUED_RETRY_LIMIT + rules.CLAIM_LEASE + timedelta(seconds=1)
    claimed = service.retry_due(now=later)
    jobs.run()

    # THEN the sweep sent the retry
    assert claimed == 1 and len(receiver.requests) == 2
    assert deliveries(api, hook["id"])[0]["status"] == "succeeded"


def test_a_long_backoff_is_left_to_the_sweep(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a delivery that has failed many times, so its next backoff is longer than SQS can delay a job
    receiver.default = 500
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    jobs.delayed.clear()
    (row,) = deliveries(api, hook["id"])
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.get(WebhookDelivery, row["id"]).attempt_count = 10  # type: ignore[union-attr]
        uow.commit()

    # WHEN the next attempt fails with the longest backoff drawn
    outcome = service.deliver(DeliverJob(workspace_id=api.workspace_id, delivery_id=row["id"], attempt=10),
                              rng=_Longest())
    jobs.run()

    # THEN no delayed job was sent: the sweep will send it when it is due
    assert outcome == "pending" and _deliver_jobs(jobs) == []
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        stored = uow.session.get(WebhookDelivery, row["id"])
        assert stored is not None and stored.sweep_after is None
        assert stored.next_attempt_at is not None and stored.next_attempt_at > utcnow() + timedelta(minutes=30)


class _Longest(Random):
    """Draws the top of every range: the longest backoff."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_a_new_webhook_gets_no_event_from_before_it_existed(api: Api, jobs: InlineQueue,
                                                            receiver: Receiver) -> None:
    # GIVEN a contact created (its event not yet relayed), then a webhook on contact events
    api.post("/v1/contacts", {"first_name": "Before"})
    hook = subscribe(api, receiver.url, ["contact.created"])

    # WHEN that event reaches the fan-out, and then another contact is created
    jobs.run()
    api.post("/v1/contacts", {"first_name": "After"})
    jobs.run()

    # THEN only the later event was delivered
    assert [r.json["event"]["data"]["object"]["first_name"] for r in receiver.requests] == ["After"]
    assert len(deliveries(api, hook["id"])) == 1


def test_a_delivery_not_due_is_not_swept(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a failed first attempt whose retry is not due yet
    receiver.script = [500]
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()

    # WHEN the sweep runs now, with its retry pushed an hour out
    (row,) = deliveries(api, hook["id"])
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.get(WebhookDelivery, row["id"]).next_attempt_at = utcnow() + timedelta(hours=1)  # type: ignore[union-attr]
        uow.commit()
    sweep(jobs)

    # THEN nothing more was sent
    assert len(receiver.requests) == 1


def test_two_sweeps_claim_a_due_delivery_once(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a due retry
    receiver.script = [500]
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (row,) = deliveries(api, hook["id"])
    make_due(api.workspace_id, row["id"])

    # WHEN two sweeps run before the jobs they enqueue do
    claimed = [service.retry_due(), service.retry_due()]
    jobs.run()

    # THEN only the first claimed it, and one more attempt was made
    assert claimed == [1, 0]
    assert len(receiver.requests) == 2


def test_after_24_hours_the_delivery_fails_and_the_webhook_is_flagged(api: Api, jobs: InlineQueue,
                                                                      receiver: Receiver) -> None:
    # GIVEN a receiver that always fails, and a delivery first tried 25 hours ago
    receiver.default = 500
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (row,) = deliveries(api, hook["id"])
    make_due(api.workspace_id, row["id"], first_attempt_hours_ago=25)

    # WHEN the retry is swept
    sweep(jobs)

    # THEN the delivery failed for good and the webhook shows it is failing
    (failed,) = deliveries(api, hook["id"], "?status=failed")
    assert failed["id"] == row["id"] and failed["next_attempt_at"] is None and failed["attempt_count"] == 2
    got = api.get(f"/v1/webhooks/{hook['id']}").json
    assert got["status"] == "failing" and got["failing_since"] is not None
    sweep(jobs)
    assert len(receiver.requests) == 2

    # AND WHEN a later delivery succeeds
    receiver.default = 200
    assert api.post(f"/v1/webhooks/{hook['id']}/test").status == 202
    jobs.run()

    # THEN the flag is cleared
    healed = api.get(f"/v1/webhooks/{hook['id']}").json
    assert healed["status"] == "healthy" and healed["failing_since"] is None


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(api: Api, jobs: InlineQueue,
                                                            receiver: Receiver) -> None:
    # GIVEN a receiver that redirects elsewhere
    receiver.default = 302
    receiver.location = "/elsewhere"
    hook = subscribe(api, receiver.url, ["contact.created"])

    # WHEN an event is delivered
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()

    # THEN the attempt failed saying so, and the Location was never requested
    (row,) = deliveries(api, hook["id"])
    detail = api.get(f"/v1/webhooks/{hook['id']}/deliveries/{row['id']}").json
    (attempt,) = detail["attempts"]
    assert attempt["status_code"] == 302 and "redirects are not followed" in attempt["error"]
    assert detail["status"] == "pending"
    assert [r.path for r in receiver.requests] == ["/hooks/crm"]


def test_an_unreachable_receiver_is_a_failed_attempt_not_a_failed_job(api: Api, jobs: InlineQueue,
                                                                      receiver: Receiver) -> None:
    # GIVEN a webhook whose receiver is gone
    hook = subscribe(api, receiver.url, ["contact.created"])
    receiver.close()

    # WHEN an event is delivered
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()

    # THEN the attempt is logged with its error, a retry is planned, and the job itself succeeded
    (row,) = deliveries(api, hook["id"])
    assert row["status"] == "pending" and row["last_error"] and row["last_status_code"] is None
    assert row["next_attempt_at"] is not None
    assert not [d for d in jobs.dead if "webhooks_deliver" in d.message.body]


def test_event_type_patterns(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN webhooks on `*`, `contact.*` and `company.created`
    everything = subscribe(api, receiver.url, ["*"])
    contacts = subscribe(api, receiver.url, ["contact.*"])
    companies = subscribe(api, receiver.url, ["company.created"])

    # WHEN a contact is created and updated, and a company created
    contact = api.post("/v1/contacts", {"first_name": "Ada"}).json
    api.patch(f"/v1/contacts/{contact['id']}", {"last_name": "Lovelace"})
    api.post("/v1/companies", {"name": "Analytical Engines"})
    jobs.run()

    # THEN each got the events its patterns match
    def types(hook: dict[str, Any]) -> set[str]:
        return {d["event_type"] for d in deliveries(api, hook["id"])}

    assert {"contact.created", "contact.updated", "company.created"} <= types(everything)
    assert types(contacts) == {"contact.created", "contact.updated"}
    assert types(companies) == {"company.created"}


def test_a_filter_sends_only_matching_records(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a webhook on contacts whose email is one address
    hook = subscribe(api, receiver.url, ["contact.created"], filter=[
        {"filters": [{"property": "email", "operator": "EQ", "value": "vip@example.com"}]}])

    # WHEN a matching and a non-matching contact are created
    vip = api.post("/v1/contacts", {"first_name": "Vip", "email": "vip@example.com"}).json
    api.post("/v1/contacts", {"first_name": "Other", "email": "other@example.com"})
    jobs.run()

    # THEN only the matching one was delivered
    (request,) = receiver.requests
    assert request.json["event"]["record_id"] == vip["id"]
    assert hook["filter"][0]["filters"][0]["property"] == "email"


def test_an_inactive_webhook_gets_nothing(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN an inactive webhook
    hook = subscribe(api, receiver.url, ["*"], active=False)

    # WHEN an event happens
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()

    # THEN nothing was delivered
    assert receiver.requests == [] and deliveries(api, hook["id"]) == []


def test_disabling_a_webhook_stops_its_retries_but_not_a_test_ping(api: Api, jobs: InlineQueue,
                                                                   receiver: Receiver) -> None:
    # GIVEN a delivery waiting for its retry, then the webhook disabled
    receiver.script = [500]
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (row,) = deliveries(api, hook["id"])
    assert api.patch(f"/v1/webhooks/{hook['id']}", {"active": False}).status == 200

    # WHEN the retry comes due, and a person sends a test ping
    make_due(api.workspace_id, row["id"])
    sweep(jobs)
    api.post(f"/v1/webhooks/{hook['id']}/test")
    jobs.run()

    # THEN the retry was dropped unsent, and the ping went out
    (failed,) = deliveries(api, hook["id"], "?status=failed")
    assert failed["id"] == row["id"] and "disabled" in failed["last_error"]
    assert [r.json["event"]["type"] for r in receiver.requests] == ["contact.created", "webhook.test"]


def test_the_same_fanout_job_twice_makes_one_delivery(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN an event already fanned out and delivered
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (row,) = deliveries(api, hook["id"])
    event = api.get(f"/v1/webhooks/{hook['id']}/deliveries/{row['id']}").json["event"]

    # WHEN the queue hands the same fan-out job over again
    record = {"messageId": "m", "receiptHandle": "m", "body": json.dumps(event), "attributes": {},
              "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
              "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:crm-jobs", "awsRegion": "us-east-1"}
    invoke_handler("webhooks_fanout", {"Records": [record]})
    invoke_handler("webhooks_fanout", {"Records": [record]})
    jobs.run()

    # THEN there is still one delivery, sent once
    assert len(deliveries(api, hook["id"])) == 1
    assert len(receiver.requests) == 1


def test_a_second_copy_of_a_deliver_job_sends_nothing(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a delivery whose first attempt failed (so it is still pending)
    receiver.script = [500]
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (row,) = deliveries(api, hook["id"])

    # WHEN the queue hands the same deliver job over again
    jobs.send(json.dumps({"handler": "webhooks_deliver", "payload": {
        "workspace_id": api.workspace_id, "delivery_id": row["id"], "attempt": 0}}))
    jobs.run()

    # THEN no second attempt was made outside the retry schedule
    assert len(receiver.requests) == 1
    assert deliveries(api, hook["id"])[0]["attempt_count"] == 1


def test_manual_redelivery_sends_a_new_delivery(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a delivered event
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (original,) = deliveries(api, hook["id"])

    # WHEN it is redelivered
    reply = api.post(f"/v1/webhooks/{hook['id']}/redeliver", {"event_id": original["event_id"]})
    jobs.run()

    # THEN a new delivery (new Webhook-Id) carried the same event
    assert reply.status == 202, reply.raw
    assert reply.json["trigger"] == "redeliver" and reply.json["id"] != original["id"]
    first, second = receiver.requests
    assert second.headers["Webhook-Id"] == reply.json["id"] != first.headers["Webhook-Id"]
    assert second.json["event"] == first.json["event"]
    assert [d["id"] for d in deliveries(api, hook["id"])] == [reply.json["id"], original["id"]]


def test_redelivery_of_an_event_the_webhook_never_got(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN an event from before the webhook existed
    company = api.post("/v1/companies", {"name": "Acme"}).json
    jobs.run()
    hook = subscribe(api, receiver.url, ["contact.created"])
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        from layers.queue.outbox import OutboxEvent

        event_id = uow.session.scalars(select(OutboxEvent.id).where(OutboxEvent.record_id == company["id"])).one()

    # WHEN it is redelivered, and an unknown event too
    sent = api.post(f"/v1/webhooks/{hook['id']}/redeliver", {"event_id": event_id})
    unknown = api.post(f"/v1/webhooks/{hook['id']}/redeliver", {"event_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"})
    invalid = api.post(f"/v1/webhooks/{hook['id']}/redeliver", {})
    jobs.run()

    # THEN the logged event is sent whatever its type; unknown and invalid ones are problems
    assert sent.status == 202
    (request,) = receiver.requests
    assert request.json["event"]["id"] == event_id and request.json["event"]["type"] == "company.created"
    assert_problem(unknown, 404)
    assert_problem(invalid, 422)
    assert len(deliveries(api, hook["id"])) == 1


def test_a_test_ping(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a webhook
    hook = subscribe(api, receiver.url, ["deal.stage_changed"])

    # WHEN it is pinged
    reply = api.post(f"/v1/webhooks/{hook['id']}/test")
    jobs.run()

    # THEN a signed webhook.test event arrived
    assert reply.status == 202 and reply.json["trigger"] == "test"
    (request,) = receiver.requests
    assert verified(request, hook["secret"])
    assert request.json["event"]["type"] == "webhook.test"
    assert request.json["event"]["data"] == {"webhook_id": hook["id"]}


def test_rotation_signs_with_both_secrets_for_a_day(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a webhook whose secret is rotated
    hook = subscribe(api, receiver.url, ["contact.created"])
    rotated = api.post(f"/v1/webhooks/{hook['id']}/rotate-secret")

    # WHEN an event is delivered
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()

    # THEN the new secret is shown once, and either secret verifies the delivery
    assert rotated.status == 200, rotated.raw
    new_secret = rotated.json["secret"]
    assert new_secret.startswith("whsec_") and new_secret != hook["secret"]
    assert rotated.json["previous_secret_expires_at"] is not None
    assert "secret" not in api.get(f"/v1/webhooks/{hook['id']}").json
    (request,) = receiver.requests
    assert request.headers["Webhook-Signature"].count("v1=") == 2
    assert verified(request, new_secret) and verified(request, hook["secret"])
    assert not verified(request, "whsec_someone_else")

    # AND WHEN the grace period is over
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        row = uow.session.get(WebhookSubscription, hook["id"])
        assert row is not None
        row.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
        uow.commit()
    api.post(f"/v1/webhooks/{hook['id']}/test")
    jobs.run()

    # THEN only the new secret signs
    last = receiver.requests[-1]
    assert last.headers["Webhook-Signature"].count("v1=") == 1
    assert verified(last, new_secret) and not verified(last, hook["secret"])


def test_the_delivery_log_pages_newest_first_and_filters_by_status(api: Api, jobs: InlineQueue,
                                                                   receiver: Receiver) -> None:
    # GIVEN three deliveries, the first of which failed
    receiver.script = [500]
    hook = subscribe(api, receiver.url, ["contact.created"])
    for name in ("A", "B", "C"):
        api.post("/v1/contacts", {"first_name": name})
        jobs.run()

    # WHEN the log is paged one at a time, and filtered
    ids: list[str] = []
    cursors: list[str] = []
    while True:
        query = f"&cursor={cursors[-1]}" if cursors else ""
        page = api.get(f"/v1/webhooks/{hook['id']}/deliveries?limit=1{query}").json
        ids += [d["id"] for d in page["data"]]
        if not page["next_cursor"]:
            break
        cursors.append(page["next_cursor"])
    pending = deliveries(api, hook["id"], "?status=pending")
    succeeded = deliveries(api, hook["id"], "?status=succeeded")
    other_query = api.get(f"/v1/webhooks/{hook['id']}/deliveries?status=failed&cursor={cursors[0]}")

    # THEN pages run newest first without gaps, the filter splits them, and a cursor keeps to its query
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    assert [d["id"] for d in pending] == [ids[2]]
    assert [d["id"] for d in succeeded] == ids[:2]
    assert_problem(other_query, 422)


def test_schedule_delivery_for_automations(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a webhook and an event-shaped dict
    hook = subscribe(api, receiver.url, ["deal.*"])
    event = {"id": "01JCCCCCCCCCCCCCCCCCCCCCCC", "sequence": 7, "type": "deal.stage_changed",
             "object_type": "deals", "record_id": "01JDDDDDDDDDDDDDDDDDDDDDDD", "workspace_id": api.workspace_id,
             "occurred_at": "2026-01-01T00:00:00Z", "actor": None, "source": "automation", "request_id": "",
             "causation": ["rule"], "data": {}}

    # WHEN the automations capability schedules a delivery in its unit of work
    with UnitOfWork(system_scope(api.workspace_id, source="automation")) as uow:
        delivery_id = service.schedule_delivery(uow, subscription_id=hook["id"], event=event)
        uow.commit()
    jobs.run()

    # THEN it is sent like any other; an unknown webhook is NotFound
    (request,) = receiver.requests
    assert request.headers["Webhook-Id"] == delivery_id and request.json["event"] == event
    with UnitOfWork(system_scope(api.workspace_id)) as uow, pytest.raises(NotFound):
        service.schedule_delivery(uow, subscription_id="01JAAAAAAAAAAAAAAAAAAAAAAA", event=event)


def test_old_delivery_logs_are_purged(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a delivery finished 31 days ago and a recent one
    hook = subscribe(api, receiver.url, ["contact.created"])
    for name in ("Old", "New"):
        api.post("/v1/contacts", {"first_name": name})
        jobs.run()
    old, new = reversed(deliveries(api, hook["id"]))
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        row = uow.session.get(WebhookDelivery, old["id"])
        assert row is not None
        row.created_at = utcnow() - timedelta(days=31)
        uow.commit()

    # WHEN the purge schedule runs
    jobs.send(json.dumps({"handler": "webhooks_purge_logs"}))
    jobs.run()

    # THEN only the recent delivery is left
    assert [d["id"] for d in deliveries(api, hook["id"])] == [new["id"]]
    assert_problem(api.get(f"/v1/webhooks/{hook['id']}/deliveries/{old['id']}"), 404)


# ---- tenancy -----------------------------------------------------------------------------------------
def test_another_workspace_cannot_see_or_change_a_webhook(api: Api, other_api: Api, jobs: InlineQueue,
                                                         receiver: Receiver) -> None:
    # GIVEN a webhook with a delivery in one workspace
    hook = subscribe(api, receiver.url, ["contact.created"])
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (row,) = deliveries(api, hook["id"])
    base = f"/v1/webhooks/{hook['id']}"

    # WHEN another workspace tries every route on it, and has an event of its own
    replies = [
        other_api.get(base), other_api.patch(base, {"active": False}), other_api.post(f"{base}/rotate-secret"),
        other_api.get(f"{base}/deliveries"), other_api.get(f"{base}/deliveries/{row['id']}"),
        other_api.post(f"{base}/redeliver", {"event_id": row["event_id"]}), other_api.post(f"{base}/test"),
        other_api.delete(base),
    ]
    other_hook = subscribe(other_api, receiver.url, ["contact.created"])
    redeliver_foreign = other_api.post(f"/v1/webhooks/{other_hook['id']}/redeliver", {"event_id": row["event_id"]})
    other_api.post("/v1/contacts", {"first_name": "Other"})
    jobs.run()

    # THEN it sees nothing, changes nothing, cannot replay the event, and its events stay its own
    assert [r.status for r in replies] == [404] * len(replies)
    assert_problem(redeliver_foreign, 404)
    assert [w["id"] for w in other_api.get("/v1/webhooks").json["data"]] == [other_hook["id"]]
    got = api.get(base).json
    assert got["active"] is True
    assert len(deliveries(api, hook["id"])) == 1
    assert [r.json["event"]["workspace_id"] for r in receiver.requests] == [api.workspace_id, other_api.workspace_id]
    assert verified(receiver.requests[1], other_hook["secret"]) and not verified(receiver.requests[1], hook["secret"])


def test_managing_webhooks_needs_the_admin_scope(api: Api, receiver: Receiver) -> None:
    # GIVEN a key with write but not admin scope
    key = api.post("/v1/api-keys", {"name": "writer", "scopes": ["read", "write"]}).json
    writer = api.with_key(key["key"])

    # WHEN it manages webhooks
    created = writer.post("/v1/webhooks", {"url": receiver.url, "event_types": ["*"]})
    listed = writer.get("/v1/webhooks")

    # THEN it is forbidden
    assert_problem(created, 403)
    assert_problem(listed, 403)
