#!/usr/bin/env python
"""The worker-tier benchmark: `python bench/worker.py`.

Real processes on loopback: MariaDB + Redis, moto's server standing in for SQS/S3 (its own process),
`crm serve` (the API) and `crm worker` (consumers + outbox relay).

1. jobs_per_second — 5,000 contacts are created through the batch API while the worker is stopped:
   5,000 outbox events, each a job for every event consumer (webhooks fan-out, automations). Then the
   worker starts and the clock runs until the outbox is published and the queue is empty. Reported:
   jobs/s through the worker (and relay rows/s), from the worker's own Prometheus counters.
2. outbox_to_webhook — a webhook subscription on `contact.created` points at a receiver in this
   process; contacts are created one per request at a steady rate, and each delivery's arrival is
   compared with its event's `occurred_at` (written in the API's transaction). Reported: p50/p95/p99/max
   latency from commit to the receiver, and that every delivery's signature verified.

SQS here is moto (Python, one process): its own request rate is part of what is measured — see the
moto CPU figure in the output.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the API bench's helpers (a script, not a package)
import run as api_bench

RESULTS = api_bench.RESULTS_DIR


def start_moto(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    moto = Path(sys.executable).parent / "moto_server"
    out = open(log_path, "wb")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    sys.exit("bench: moto_server did not start")


def aws_clients(endpoint: str) -> tuple[Any, Any]:
    import boto3

    kwargs = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "bench",
              "aws_secret_access_key": "bench"}
    return boto3.client("sqs", **kwargs), boto3.client("s3", **kwargs)


def create_queues(sqs: Any, s3: Any, name: str) -> str:
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": "5"})})["QueueUrl"]
    s3.create_bucket(Bucket="crm-local-files")
    return str(url)


def queue_depth(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                               "ApproximateNumberOfMessagesNotVisible"])
    return int(a["Attributes"]["ApproximateNumberOfMessages"]) + int(a["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"])


def unpublished(database_url: str) -> int:
    return int(api_bench.db_rows(database_url, "SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL")[0][0])


def worker_counter(port: int, name: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def start_worker(env: dict[str, str], threads: int, metrics_port: int, log_path: Path) -> subprocess.Popen[bytes]:
    out = open(log_path, "wb")
    return subprocess.Popen([api_bench.crm_executable(), "worker", "--threads", str(threads), "--metrics-port",
                             str(metrics_port)], env=env, cwd=api_bench.APP_DIR, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_metrics(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            worker_counter(port, "crm_jobs_processed_total")
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("bench: the worker did not serve metrics within 60 s")


# ---- 1. jobs per second -----------------------------------------------------------------------------
def jobs_per_second(args: argparse.Namespace, env: dict[str, str], client: Any, sqs: Any, queue_url: str,
                    moto_pid: int) -> dict[str, Any]:
    api_bench.log(f"creating {args.contacts} contacts with the worker stopped")
    companies: list[tuple[str, str]] = []
    import random

    contacts = api_bench.make_contacts(random.Random(7), companies)[: args.contacts]
    for c in contacts:
        c.pop("company_id", None)
    api_bench.batch_create(client, "contacts", contacts, parallel=4)
    pending = unpublished(args.database_url)
    consumers = 2
    expected_jobs = pending * consumers
    metrics_port = api_bench.free_port()
    api_bench.log(f"{pending} outbox rows pending; starting crm worker --threads {args.threads}")
    cpu_before = {"moto": api_bench.proc_cpu_seconds(moto_pid)}
    proc = start_worker(env, args.threads, metrics_port, RESULTS / "worker-jobs.log")
    try:
        wait_metrics(metrics_port)
        started = time.monotonic()
        deadline = started + args.timeout
        processed = 0.0
        while time.monotonic() < deadline:
            processed = worker_counter(metrics_port, "crm_jobs_processed_total")
            if processed >= expected_jobs and unpublished(args.database_url) == 0 and queue_depth(sqs, queue_url) == 0:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        failed = worker_counter(metrics_port, "crm_jobs_failed_total")
        worker_cpu = api_bench.proc_cpu_seconds(proc.pid)
        moto_cpu = api_bench.proc_cpu_seconds(moto_pid) - cpu_before["moto"]
    finally:
        stop(proc)
    return {"outbox_rows": pending, "jobs_expected": expected_jobs, "jobs_processed": processed,
            "jobs_failed": failed, "seconds": round(elapsed, 2), "jobs_per_second": round(processed / elapsed, 1),
            "relay_rows_per_second": round(pending / elapsed, 1), "worker_threads": args.threads,
            "worker_cpu_seconds": round(worker_cpu, 1), "moto_cpu_seconds": round(moto_cpu, 1),
            "worker_cpu_ms_per_job": round(1000 * worker_cpu / max(processed, 1), 2)}


# ---- 2. outbox to webhook latency ----------------------------------------------------------------------
class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any], dict[str, str]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.time()
                with receiver.lock:
                    receiver.arrivals.append((arrived, {"raw": body.decode()}, dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def verify(secret: str, header: str, body: str) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if p.startswith("t="))
    signatures = [p.split("=", 1)[1] for p in header.split(",") if p.startswith("v1=")]
    expected = hmac.new(secret.encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


def outbox_to_webhook(args: argparse.Namespace, env: dict[str, str], client: Any) -> dict[str, Any]:
    receiver = Receiver()
    status, body = client.request("POST", "/v1/webhooks", {
        "url": f"http://127.0.0.1:{receiver.port}/hook", "event_types": ["contact.created"]})
    if status != 201:
        sys.exit(f"bench: could not create the webhook subscription: {status} {body[:300]!r}")
    secret = json.loads(body)["secret"]
    metrics_port = api_bench.free_port()
    proc = start_worker(env, args.threads, metrics_port, RESULTS / "worker-webhooks.log")
    try:
        wait_metrics(metrics_port)
        api_bench.log(f"creating {args.webhook_events} contacts at {args.rate}/s, one per request")
        interval = 1.0 / args.rate
        for i in range(args.webhook_events):
            next_at = time.monotonic() + interval
            status, body = client.request("POST", "/v1/contacts", {"first_name": f"Hook{i}",
                                                                   "email": f"hook{i}@bench.example"})
            if status != 201:
                sys.exit(f"bench: create failed {status} {body[:200]!r}")
            time.sleep(max(0.0, next_at - time.monotonic()))
        deadline = time.monotonic() + 60
        while len(receiver.arrivals) < args.webhook_events and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(proc)
        receiver.server.shutdown()
    latencies, verified = [], 0
    for arrived, raw, headers in receiver.arrivals:
        payload = json.loads(raw["raw"])
        event = payload.get("event", payload)
        occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).timestamp()
        latencies.append((arrived - occurred) * 1000)
        header = headers.get("Webhook-Signature") or headers.get("webhook-signature") or ""
        verified += verify(secret, header, raw["raw"])
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else float("nan")

    return {"events": args.webhook_events, "delivered": len(latencies), "signatures_verified": verified,
            "rate_per_second": args.rate, "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1], 1) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="mysql+pymysql://root@127.0.0.1:3306/crm_bench_worker")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=8, help="worker consumer threads")
    parser.add_argument("--webhook-events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="contacts per second in the latency run")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--only", choices=("jobs", "webhooks"), default=None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    args.port = args.port or api_bench.free_port()
    RESULTS.mkdir(exist_ok=True)

    api_bench.reset_database(args.database_url)
    api_bench.reset_redis(args.redis_url)
    moto_port = api_bench.free_port()
    moto = start_moto(moto_port, RESULTS / "moto.log")
    endpoint = f"http://127.0.0.1:{moto_port}"
    sqs, s3 = aws_clients(endpoint)
    queue_url = create_queues(sqs, s3, "crm-jobs-bench")
    env = api_bench.server_env(args)
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1", "JOBS_QUEUE_NAME": "crm-jobs-bench", "WORKER_WAIT_SECONDS": "1",
                "RELAY_IDLE_SECONDS": "0.02", "WEBHOOK_ALLOWED_PRIVATE_CIDRS": '["127.0.0.0/8"]',
                "LOG_LEVEL": "WARNING"})
    api_bench.run_cli(["migrate"], env)
    workspace = json.loads(api_bench.run_cli(["workspace", "create", "--name", "Bench worker",
                                              "--owner-email", "bench@example.com"], env))
    server = api_bench.start_server(args, env, RESULTS / "server-worker-bench.log", workers=1, threads=8)
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count()}
    try:
        client = api_bench.Http(args.port, workspace["api_key"])
        if args.only in (None, "jobs"):
            results["jobs_per_second"] = jobs_per_second(args, env, client, sqs, queue_url, moto.pid)
            api_bench.log(json.dumps(results["jobs_per_second"]))
        if args.only in (None, "webhooks"):
            results["outbox_to_webhook"] = outbox_to_webhook(args, env, client)
            api_bench.log(json.dumps(results["outbox_to_webhook"]))
    finally:
        server.stop()
        stop(moto)
    out = RESULTS / "worker-latest.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
