"""Webhooks on MariaDB: filters through the search's SQL, the fan-out's unique guard, concurrent retry
sweeps (FOR UPDATE SKIP LOCKED) that never claim a delivery twice, and the log purge."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from functions.webhooks import service
from functions.webhooks.models import WebhookDelivery
from layers.db.uow import UnitOfWork
from layers.runtime.inline import InlineQueue
from shared.clock import utcnow
from shared.context import system_scope
from shared.ids import new_id
from tests.functional.test_webhooks import Receiver, verified
from tests.support.api import Api


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()
    with UnitOfWork(unscoped=True) as uow:
        uow.session.execute(update(WebhookDelivery).where(WebhookDelivery.status == "pending")
                            .values(status="failed", next_attempt_at=None))
        uow.commit()


def test_a_filtered_webhook_delivers_matching_records_on_mariadb(api: Api, jobs: InlineQueue,
                                                                 receiver: Receiver) -> None:
    # GIVEN a webhook on contacts with one email address
    hook = api.post("/v1/webhooks", {"url": receiver.url, "event_types": ["contact.*"], "filter": [
        {"filters": [{"property": "email", "operator": "IN", "values": ["vip@example.com"]}]}]}).json

    # WHEN a matching and a non-matching contact are created
    vip = api.post("/v1/contacts", {"first_name": "Vip", "email": "vip@example.com"}).json
    api.post("/v1/contacts", {"first_name": "Other", "email": "other@example.com"})
    jobs.run()

    # THEN only the match was delivered, signed
    (request,) = receiver.requests
    assert request.json["event"]["record_id"] == vip["id"] and verified(request, hook["secret"])


def test_the_fanout_key_is_unique_but_redeliveries_repeat(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN a delivered event
    hook = api.post("/v1/webhooks", {"url": receiver.url, "event_types": ["contact.created"]}).json
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.run()
    (row,) = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"]

    # WHEN the same fan-out row is written again, and the event is redelivered twice
    with UnitOfWork(system_scope(api.workspace_id)) as uow, pytest.raises(IntegrityError):
        uow.session.add(WebhookDelivery(
            id=new_id(), subscription_id=hook["id"], fanout_key=row["event_id"], event_id=row["event_id"],
            event_type="contact.created", event={}, trigger="event", status="pending", attempt_count=0,
            created_at=utcnow()))
        uow.session.flush()
    for _ in range(2):
        assert api.post(f"/v1/webhooks/{hook['id']}/redeliver", {"event_id": row["event_id"]}).status == 202
    jobs.run()

    # THEN the constraint refused the copy, and both redeliveries were sent
    assert len(api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"]) == 3
    assert len(receiver.requests) == 3


def test_concurrent_sweeps_claim_each_due_delivery_once(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN six deliveries whose retries are due for the sweep (no delayed job holds them)
    receiver.default = 500
    hook = api.post("/v1/webhooks", {"url": receiver.url, "event_types": ["webhook.test"]}).json
    for _ in range(6):
        api.post(f"/v1/webhooks/{hook['id']}/test")
    jobs.run()
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(WebhookDelivery).where(WebhookDelivery.subscription_id == hook["id"])
                            .values(next_attempt_at=utcnow() - timedelta(seconds=5), sweep_after=None))
        uow.commit()

    # WHEN four sweeps run at once
    barrier = threading.Barrier(4)

    def sweep(_: int) -> int:
        barrier.wait(timeout=10)
        return service.retry_due()

    with ThreadPoolExecutor(max_workers=4) as pool:
        claimed = list(pool.map(sweep, range(4)))

    # THEN each delivery was claimed by exactly one of them
    assert sum(claimed) == 6
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        leases = list(uow.session.scalars(select(WebhookDelivery.sweep_after)
                                          .where(WebhookDelivery.subscription_id == hook["id"])))
    assert all(lease is not None and lease > utcnow() for lease in leases)


def test_purge_removes_only_old_finished_deliveries(api: Api, jobs: InlineQueue, receiver: Receiver) -> None:
    # GIVEN two finished deliveries, one from 31 days ago
    hook = api.post("/v1/webhooks", {"url": receiver.url, "event_types": ["webhook.test"]}).json
    old = api.post(f"/v1/webhooks/{hook['id']}/test").json
    new = api.post(f"/v1/webhooks/{hook['id']}/test").json
    jobs.run()
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == old["id"])
                            .values(created_at=utcnow() - timedelta(days=31)))
        uow.commit()

    # WHEN the logs are purged
    service.purge_logs()

    # THEN the old one and its attempts are gone
    ids = [d["id"] for d in api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"]]
    assert ids == [new["id"]]


def test_another_workspace_sees_no_webhook_on_mariadb(api: Api, other_api: Api, receiver: Receiver) -> None:
    # GIVEN a webhook in one workspace
    hook = api.post("/v1/webhooks", {"url": receiver.url, "event_types": ["*"]}).json

    # WHEN another workspace lists and reads it
    # THEN it sees nothing
    assert other_api.get("/v1/webhooks").json["data"] == []
    assert other_api.get(f"/v1/webhooks/{hook['id']}").status == 404
    assert other_api.delete(f"/v1/webhooks/{hook['id']}").status == 404
    assert api.get(f"/v1/webhooks/{hook['id']}").status == 200


def test_two_copies_of_a_deliver_job_at_once_send_once(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a receiver that holds the first request open, and a delivery waiting for its first attempt
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from layers.runtime.dispatch import dispatch

    arrived, release = threading.Event(), threading.Event()
    requests: list[str] = []

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            requests.append(self.headers["Webhook-Id"])
            arrived.set()
            release.wait(10)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api.post("/v1/webhooks", {"url": f"http://127.0.0.1:{server.server_address[1]}/h",
                              "event_types": ["contact.created"]})
    api.post("/v1/contacts", {"first_name": "Ada"})
    jobs.relay.run_once()
    fanout = next(m for m in jobs.pending if '"handler":"webhooks_fanout"' in m.body)
    jobs.pending.clear()
    dispatch(jobs.app, fanout)
    jobs.relay.run_once()
    (deliver,) = [m for m in jobs.pending if '"handler":"webhooks_deliver"' in m.body]
    jobs.pending.clear()

    # WHEN one copy of its job is sending and a second copy runs meanwhile (SQS delivers at least once)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(dispatch, jobs.app, deliver)
        assert arrived.wait(10)
        dispatch(jobs.app, deliver)
        release.set()
        first.result(10)
    server.shutdown()

    # THEN the receiver got it once
    assert len(requests) == 1
