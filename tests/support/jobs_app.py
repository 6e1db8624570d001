"""A small app of job handlers with controllable behaviour, for testing the worker runtime itself."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from chalice.app import CloudWatchEvent, SQSEvent
from pydantic import BaseModel

from layers.db.uow import UnitOfWork
from layers.http.chalice_app import CrmChalice
from layers.queue.jobs import first_time, job_payloads, on_dead_letter
from layers.queue.lanes import current_lane
from layers.queue.outbox import emit
from layers.queue.relay import Consumers
from shared.context import system_scope
from tests.support.ids import named_id


def every_event_to(consumer: str) -> Consumers:
    """Consumers for a relay under test: every pending event goes to `consumer`."""
    return lambda pending: {consumer: {(w, t) for w, types in pending.items() for t in types}}


class Work(BaseModel):
    key: str
    seconds: float = 0.0
    fail_times: int = 0
    hold: bool = False  # run until the test sets `release`
    workspace_id: str | None = None


class JobsApp:
    """Handlers record what they did; `fail_times` makes a key fail that many runs before succeeding.

    `finished` is the order keys finished in, `lanes` the lane each ran in, `given_up` what the worker
    gave up on (handler's `@on_dead_letter`), and `after[key]` runs once that key finished. A job sent
    with `hold` runs until the test sets `release`: a test says when a job ends, not a sleep."""

    def __init__(self) -> None:
        self.app = CrmChalice(app_name="jobs-test", configure_logs=False)
        self.runs: Counter[str] = Counter()
        self.finished: list[str] = []
        self.lanes: dict[str, str] = {}
        self.given_up: list[tuple[str, str]] = []
        self.after: dict[str, Callable[[], None]] = {}
        self.started = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.ticks = 0

        @on_dead_letter("test_work", Work)
        def test_work_given_up(work: Work, reason: str) -> None:
            self.given_up.append((work.key, reason))

        @self.app.on_sqs_message(queue="crm-jobs", name="test_work")
        def test_work(event: SQSEvent) -> None:
            for work in job_payloads(event, Work):
                self._work(work)

        @self.app.on_sqs_message(queue="crm-jobs", name="test_emit_once")
        def test_emit_once(event: SQSEvent) -> None:
            for work in job_payloads(event, Work):
                assert work.workspace_id
                with UnitOfWork(system_scope(work.workspace_id, source="worker")) as uow:
                    if first_time(uow, f"test_emit_once:{work.key}"):
                        emit(uow, event_type="test.done", object_type="tests", record_id=named_id(work.key),
                             data={})
                    uow.commit()

        @self.app.on_sqs_message(queue="crm-jobs", name="test_consume_event")
        def test_consume_event(event: SQSEvent) -> None:
            for record in event:
                body = json.loads(record.body)
                with UnitOfWork(system_scope(body["workspace_id"], source="worker")) as uow:
                    if first_time(uow, f"test_consume_event:{body['id']}"):
                        emit(uow, event_type="test.consumed", object_type="tests", record_id=body["id"], data={})
                    uow.commit()

        @self.app.schedule("rate(5 minutes)", name="test_tick")
        def test_tick(event: CloudWatchEvent) -> None:
            self.ticks += 1

    def _work(self, work: Work) -> Any:
        with self.lock:
            self.runs[work.key] += 1
            attempt = self.runs[work.key]
        self.started.set()
        time.sleep(work.seconds)
        if work.hold and not self.release.wait(60):
            raise RuntimeError(f"{work.key} was never released")
        if attempt <= work.fail_times:
            raise RuntimeError(f"{work.key} fails on run {attempt}")
        with self.lock:
            self.finished.append(work.key)
            self.lanes[work.key] = current_lane()
        if work.key in self.after:
            self.after[work.key]()
