"""Commands run beside `crm local` find its AWS stand-in: `crm local` records moto's endpoint, credentials
and queues in .crm-local/aws.json, and `crm dlq` uses them when its environment names no AWS endpoint."""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from layers.aws.clients import reset_clients
from layers.queue.sqs import Queues, create_queues, use_queues
from layers.runtime import local_aws
from shared.ids import new_id
from shared.settings import reset_settings
from tiers.cli import main

_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
              "AWS_SESSION_TOKEN", "JOBS_QUEUE_NAME", "JOBS_QUEUE_URL", "JOBS_DLQ_URL", "JOBS_BULK_QUEUE_URL",
              "JOBS_BULK_DLQ_URL", "FILES_BUCKET")


@pytest.fixture
def beside_crm_local(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queues]:
    """A directory where `crm local` runs: its queues on moto's server, recorded in .crm-local/aws.json.
    The test's own environment then has no AWS settings at all (what another shell has)."""
    monkeypatch.chdir(tmp_path)
    for name in _VARIABLES:  # whatever the commands set is undone after the test
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRM_ENV", "local")
    name = f"crm-local-{new_id().lower()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("JOBS_QUEUE_NAME", name)
    reset_settings()
    reset_clients()
    queues = create_queues()
    (tmp_path / ".crm-local").mkdir()
    local_aws.record(tmp_path / ".crm-local", queues, files_bucket="crm-local-files")
    for variable in _VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    reset_settings()
    reset_clients()
    use_queues(None)
    yield queues
    use_queues(None)
    reset_clients()
    monkeypatch.undo()
    reset_settings()


def test_dlq_list_beside_crm_local_uses_its_recorded_queues(beside_crm_local: Queues, moto_server: str) -> None:
    # GIVEN a dead-lettered job in crm local's DLQ, and a shell with no AWS settings
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="local",
                       aws_secret_access_key="local")
    sqs.send_message(QueueUrl=beside_crm_local.dlq_url, MessageBody=json.dumps({"handler": "gone", "payload": {}}))
    assert "AWS_ENDPOINT_URL" not in os.environ

    # WHEN `crm dlq list` runs there
    listed = CliRunner().invoke(main, ["dlq", "list"])

    # THEN it lists the job from crm local's DLQ, saying whose stand-in it used
    assert listed.exit_code == 0, listed.output
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(e["handler"], e["queue"]) for e in entries] == [("gone", beside_crm_local.main.name)]
    assert moto_server in listed.stderr


def test_dlq_list_says_when_the_recorded_crm_local_is_gone(beside_crm_local: Queues, tmp_path: Path) -> None:
    # GIVEN a record left by a crm local that no longer runs (killed): nothing listens at its endpoint
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    record = tmp_path / ".crm-local" / "aws.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "endpoint_url": closed}))

    # WHEN `crm dlq list` runs
    listed = CliRunner().invoke(main, ["dlq", "list"])

    # THEN it fails saying so, not with a traceback
    assert listed.exit_code == 1
    assert "is crm local still running?" in listed.stderr and "Traceback" not in listed.output


def test_an_environment_with_its_own_endpoint_ignores_the_record(beside_crm_local: Queues, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a shell that names an AWS endpoint of its own
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    # WHEN the record is consulted THEN it is left alone
    assert local_aws.use_recorded(tmp_path / ".crm-local") is None
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9" and "JOBS_DLQ_URL" not in os.environ


def test_the_record_is_removed_only_by_the_crm_local_that_wrote_it(beside_crm_local: Queues, tmp_path: Path) -> None:
    # GIVEN a record written by another process
    record = tmp_path / ".crm-local" / "aws.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "pid": os.getpid() + 1}))

    # WHEN this process forgets its own THEN the other's stays; its own goes
    local_aws.forget(tmp_path / ".crm-local")
    assert record.exists()
    record.write_text(json.dumps({**json.loads(record.read_text()), "pid": os.getpid()}))
    local_aws.forget(tmp_path / ".crm-local")
    assert not record.exists()
