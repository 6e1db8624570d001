"""`crm worker` as a real process beside `crm serve`, on MariaDB, Redis and moto's SQS/S3 server.

A write through the API reaches its consumers through the outbox relay and the queue; the worker
drains the queue; SIGTERM stops it within the container's stop timeout.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from functions.webhooks.signing import verify
from tests.system.test_serve import (  # noqa: F401 - fixtures shared with the API tier's tests
    CRM,
    REPO,
    Server,
    _free_port,
    environment,
    start_server,
    workspace,
)

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def moto_env(environment: dict[str, str]) -> Iterator[dict[str, str]]:  # noqa: F811
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    env = {**environment, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "JOBS_QUEUE_NAME": "crm-jobs-sys",
           "WORKER_WAIT_SECONDS": "2", "RELAY_IDLE_SECONDS": "0.05", "WEBHOOK_ALLOWED_PRIVATE_CIDRS": '["127.0.0.0/8"]'}
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    for name in ("crm-jobs-sys", "crm-jobs-sys-bulk"):  # the jobs queue and the bulk lane, each with its DLQ
        dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="crm-local-files")
    yield env
    moto.stop()


def start_worker(env: dict[str, str], log: Path, *, threads: int = 2) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(CRM), "worker", "--threads", str(threads), "--metrics-port", str(_free_port())],
                                env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def api_server(moto_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(moto_env, tmp_path_factory.mktemp("serve-w"), workers=1, threads=4)
    yield running
    running.stop()


def test_a_write_reaches_the_event_log_through_the_worker_tier(
    moto_env: dict[str, str], api_server: Server, workspace: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    # GIVEN the API and a worker (with its relay) running as processes
    log = tmp_path / "worker.log"
    worker = start_worker(moto_env, log)
    headers = {"Authorization": f"Bearer {workspace['api_key']}"}
    try:
        with api_server.client(headers=headers) as client:
            # WHEN a contact is created through the API
            created = client.post("/v1/contacts", json={"first_name": "Wire", "email": "wire@example.com"})
            assert created.status_code == 201, created.text

            # THEN the relay publishes its event within a moment and the log shows it
            deadline = time.monotonic() + 15
            types: list[str] = []
            while time.monotonic() < deadline and "contact.created" not in types:
                page = client.get("/v1/events", params={"types": "contact.*"}).json()
                types = [e["type"] for e in page["data"]]
                time.sleep(0.1)
            assert "contact.created" in types, log.read_text(errors="replace")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def test_a_webhook_is_delivered_signed_through_the_worker_process(
    moto_env: dict[str, str], api_server: Server, workspace: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    # GIVEN a receiver, a subscription to it, and a worker process
    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    headers = {"Authorization": f"Bearer {workspace['api_key']}"}
    worker = start_worker(moto_env, tmp_path / "worker.log")
    try:
        with api_server.client(headers=headers) as client:
            made = client.post("/v1/webhooks", json={
                "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook", "event_types": ["company.created"]})
            assert made.status_code == 201, made.text

            # WHEN a company is created through the API
            company = client.post("/v1/companies", json={"name": "Wired", "domain": "wired.example"}).json()

            # THEN the receiver gets one signed delivery of that event within seconds
            deadline = time.monotonic() + 20
            while not received and time.monotonic() < deadline:
                time.sleep(0.05)
        assert received, (tmp_path / "worker.log").read_text(errors="replace")
        body, sent_headers = received[0]
        assert verify(made.json()["secret"], sent_headers["Webhook-Signature"], body)
        delivery = json.loads(body)
        assert delivery["event"]["type"] == "company.created"
        assert delivery["event"]["record_id"] == company["id"]
    finally:
        receiver.shutdown()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def test_sigterm_stops_the_worker_within_the_stop_timeout(moto_env: dict[str, str], tmp_path: Path) -> None:
    # GIVEN a running worker, idle in a long poll
    log = tmp_path / "worker.log"
    worker = start_worker(moto_env, log)
    deadline = time.monotonic() + 30
    while "worker on" not in log.read_text(errors="replace") and time.monotonic() < deadline:
        assert worker.poll() is None, log.read_text(errors="replace")
        time.sleep(0.1)

    # WHEN ECS sends SIGTERM
    sent_at = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(30)

    # THEN it exits cleanly well inside the 30 s stop timeout
    assert code == 0, log.read_text(errors="replace")
    assert time.monotonic() - sent_at < 15
    assert "finishing messages in hand" in log.read_text(errors="replace")


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for `signum` (the SigCgt mask in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_sigterm_while_the_worker_is_still_starting_is_a_clean_stop(moto_env: dict[str, str], tmp_path: Path) -> None:
    # GIVEN a worker that has only just started: its handler is in place, its app perhaps still importing
    # (crm local stopped right after it started does this)
    log = tmp_path / "worker.log"
    worker = start_worker(moto_env, log)
    deadline = time.monotonic() + 30
    while not _catches(worker.pid, signal.SIGTERM):
        assert worker.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.005)

    # WHEN SIGTERM arrives at once
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(30)

    # THEN it is a clean stop (exit 0), not a death by signal (-15) that crm local reports as a failure
    assert code == 0, log.read_text(errors="replace")


def test_worker_metrics_are_served(moto_env: dict[str, str], tmp_path: Path) -> None:
    # GIVEN a running worker with its metrics port
    port = _free_port()
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([str(CRM), "worker", "--threads", "1", "--metrics-port", str(port)],
                                  env=moto_env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        # WHEN Prometheus scrapes it
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                break
            except httpx.TransportError:
                time.sleep(0.2)

        # THEN the job metrics are there
        for name in ("crm_jobs_processed_total", "crm_jobs_failed_total", "crm_jobs_retried_total",
                     "crm_jobs_dead_lettered_total", "crm_job_duration_seconds", "crm_job_queue_lag_seconds"):
            assert name in text, (name, log.read_text(errors="replace"))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert os.path.exists(log)
