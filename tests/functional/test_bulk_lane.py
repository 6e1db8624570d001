"""An export asked for after an import's events does not wait behind them: the import, its events, their
webhook fan-outs and deliveries go by the bulk queue, and the worker serves the jobs queue first.

The order is read from what one worker thread did (one thread runs one message at a time, so the export's
start and each fan-out's delivery are written in the order they ran), never from how long anything took.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

import app
from functions.exports.models import DataExport
from functions.webhooks.models import WebhookDelivery
from layers.aws.clients import client
from layers.db.uow import UnitOfWork
from layers.queue.lanes import BULK
from layers.queue.outbox import OutboxEvent
from layers.queue.relay import Relay, sqs_publisher
from layers.queue.sqs import Queues
from layers.runtime.worker import Worker
from shared.context import system_scope
from tests.support.api import Api

ROWS = 40
BOUNDARY = "crm-bulk-boundary"


@pytest.fixture
def receiver_url() -> Iterator[str]:
    """A webhook receiver that answers 204 to everything."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


def _depth(url: str) -> int:
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _import(api: Api, rows: int) -> str:
    csv_text = "email\r\n" + "".join(f"bulk{i}@example.com\r\n" for i in range(rows))
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"object_type\"\r\n\r\ncontacts\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n{csv_text}\r\n--{BOUNDARY}--\r\n")
    made = api.post("/v1/imports", raw=body, headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert made.status == 201, made.raw
    assert api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": {"email": "email"}}).status == 202
    return str(made.json["id"])


def test_an_export_runs_before_the_import_events_queued_ahead_of_it(aws: Queues, api: Api,
                                                                    receiver_url: str) -> None:
    # GIVEN a webhook on new contacts, and an import whose chunk the worker ran from the bulk queue, so that
    # its 40 events (and their fan-out jobs) are queued
    Relay(lambda messages: None).drain()
    relay = Relay(sqs_publisher(aws))
    sqs = client("sqs")
    assert api.post("/v1/webhooks", {"url": receiver_url, "event_types": ["contact.created"]}).status == 201
    import_id = _import(api, ROWS)
    relay.drain()
    worker = Worker(app.app, sqs, aws, threads=1, wait_seconds=0, messages_per_receive=10)
    (chunk,) = sqs.receive_message(QueueUrl=aws.lane(BULK).url, AttributeNames=["All"])["Messages"]
    assert worker.process(chunk, lane=BULK) == "done"
    assert api.get(f"/v1/imports/{import_id}").json["status"] == "completed"
    relay.drain()

    # WHEN a user then asks for an export
    export = api.post("/v1/exports", {"object_type": "contacts"}).json
    relay.drain()
    queued = (_depth(aws.jobs_url), _depth(aws.lane(BULK).url))

    # AND one worker thread drains both queues (a relay publishing what the jobs write)
    threads = worker.start()
    relaying = threading.Event()
    relay_thread = threading.Thread(target=relay.run_forever, args=(relaying,), kwargs={"idle_seconds": 0.05})
    relay_thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _all_delivered(api.workspace_id, export["id"]):
        time.sleep(0.1)
    worker.stop()
    relaying.set()
    for thread in [*threads, relay_thread]:
        thread.join(30)

    # THEN the import's fan-outs waited in the bulk queue, the export alone in the jobs queue ...
    assert queued == (1, ROWS)
    assert _all_delivered(api.workspace_id, export["id"])
    # ... and the export started before the first fan-out ran (each fan-out writes its delivery)
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        started = uow.session.scalars(select(DataExport.started_at).where(DataExport.id == export["id"])).one()
        first_fanout = uow.session.scalar(select(func.min(WebhookDelivery.created_at)))
        deliver_lanes = set(uow.session.scalars(select(OutboxEvent.lane).where(
            OutboxEvent.kind == "job", OutboxEvent.event_type == "webhooks_deliver")))
    assert started is not None and first_fanout is not None and started < first_fanout
    # ... and the deliveries those fan-outs made stayed in the bulk lane
    assert deliver_lanes == {BULK}


def _all_delivered(workspace_id: str, export_id: str) -> bool:
    with UnitOfWork(system_scope(workspace_id)) as uow:
        export_status = uow.session.scalars(select(DataExport.status).where(DataExport.id == export_id)).one()
        succeeded = uow.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.status == "succeeded"))
    return export_status == "completed" and succeeded == ROWS
