"""Sample events for every job and schedule handler: named `<handler>_<case>.json`, run by `crm invoke`.

Job samples are SQS events whose record body is the job's payload; schedule samples are the scheduled
event EventBridge Scheduler's target receives. Every sample runs as it is (a job naming records that do
not exist has nothing to do and finishes).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import app
from layers.queue.outbox import event_consumers
from layers.queue.sqs import Queues
from layers.runtime.dispatch import handler_kinds
from tiers.cli import main
from tiers.invoke import invoke_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"
KINDS = handler_kinds(app.app)


def _handler_of(path: Path) -> str | None:
    names = [name for name in KINDS if path.stem.startswith(name + "_")]
    return max(names, key=len) if names else None


SAMPLES = sorted(p for p in EVENTS.glob("*.json") if _handler_of(p) is not None)


def test_every_job_and_schedule_handler_has_a_sample_event() -> None:
    # GIVEN the app's job and schedule handlers
    covered = {_handler_of(p) for p in SAMPLES}

    # WHEN they are compared with the samples
    missing = sorted(set(KINDS) - covered)

    # THEN none is without one
    assert missing == []


def test_event_consumers_are_job_handlers() -> None:
    # GIVEN the handlers every committed event is sent to
    # THEN each is a registered job handler (a typo would dead-letter every event)
    assert event_consumers() and all(KINDS.get(name) == "job" for name in event_consumers())


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_has_its_handlers_event_shape(sample: Path) -> None:
    # GIVEN a sample event
    event = json.loads(sample.read_text())
    kind = KINDS[_handler_of(sample) or ""]

    # THEN a job's is an SQS event with one JSON record, a schedule's a scheduled event
    if kind == "job":
        (record,) = event["Records"]
        assert record["eventSource"] == "aws:sqs" and isinstance(json.loads(record["body"]), dict)
        assert {"messageId", "receiptHandle", "attributes", "messageAttributes", "eventSourceARN"} <= set(record)
    else:
        assert event["detail-type"] == "Scheduled Event" and event["resources"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_runs_on_its_handler(aws: Queues, sample: Path) -> None:
    # GIVEN a sample event and moto standing in for AWS
    event = json.loads(sample.read_text())

    # WHEN it is invoked on its handler the way Lambda would
    invoke_handler(_handler_of(sample) or "", event)

    # THEN it finishes (a raise would be a retry, then a dead letter, for a sample that should be fine)


def test_crm_invoke_runs_a_schedule_sample(aws: Queues) -> None:
    # GIVEN a schedule handler's sample
    sample = next(p for p in SAMPLES if KINDS[_handler_of(p) or ""] == "schedule")

    # WHEN it runs through the command line
    result = CliRunner().invoke(main, ["invoke", _handler_of(sample) or "", "--event", str(sample)])

    # THEN the command succeeds
    assert result.exit_code == 0, result.output
