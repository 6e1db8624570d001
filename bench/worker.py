#!/usr/bin/env python
"""The worker-tier benchmark: `python bench/worker.py`.

Real processes on loopback: MariaDB + Redis, moto's server standing in for SQS/S3 (its own process),
`crm serve` (the API, 1 process) and `crm worker` (consumer threads + the outbox relay).

One steady-state pipeline run per rate (default 10, 25, 50, 100 events/s, 30 s each): a webhook
subscription on `contact.created` points at a receiver in this process; contacts are created through
`POST /v1/contacts/batch/create` (10 per request) at the rate. Every event becomes two jobs (the
webhooks fan-out, then the webhook delivery; the workspace has no automation rules, so the relay sends
the automations engine nothing), so the worker's job rate is ~2x the event rate. Reported per rate:
jobs/s the worker completed (its own Prometheus counters), the deepest the queue got, the CPU each
process used, and outbox-to-webhook latency — from the event's `occurred_at` (stamped in the API's
transaction) to the receiver reading the signed delivery (p50/p95/p99/max), with every signature
verified.

Why steady state and not a backlog: moto's SQS scans every message on each call (measured: 9 ms per
send+receive+delete at depth 0, 87 ms at depth 1,000, 382 ms at depth 5,000), so a backlog measures
moto, not the worker. With the queue kept short the per-call cost is ~3 ms, still moto's, which the
moto CPU column shows.

`--scenarios export_behind_import` measures the one backlog that matters to a user: a 1,000-row contacts
import (uploaded to its presigned URL, committed) in a workspace whose webhook wants `contact.created`;
the moment the import is completed (its 1,000 events are in the outbox and on their way to the fan-out),
an export of the contacts is asked for. Reported: how long the export took from its POST to `completed`
(and how long it waited to start), the queues' depths then, and how long the import's 1,000 deliveries
took to arrive. `--at REV` runs the app of another commit (the bench itself stays this one), so a change
is measured before and after with the same script.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
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


def create_queues(sqs: Any, s3: Any, name: str) -> list[str]:
    """The jobs queue and the bulk queue (an app that predates the bulk lane ignores it), each with its DLQ."""
    urls = []
    for queue in (name, f"{name}-bulk"):
        dlq = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        urls.append(str(sqs.create_queue(QueueName=queue, Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})})["QueueUrl"]))
    s3.create_bucket(Bucket="crm-local-files")
    return urls


def queue_depth(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                               "ApproximateNumberOfMessagesNotVisible"])
    return int(a["Attributes"]["ApproximateNumberOfMessages"]) + int(a["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"])


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


# ---- the pipeline at a steady rate -----------------------------------------------------------------
class Receiver:
    """Records when each delivery arrived and whether its signature verifies."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.time()
                with receiver.lock:
                    receiver.arrivals.append((arrived, body, self.headers.get("Webhook-Signature", "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[tuple[float, bytes, str]]:
        with self.lock:
            taken, self.arrivals = self.arrivals, []
        return taken


def verify(secret: str, header: str, body: bytes) -> bool:
    fields = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamp = next((v for k, v in fields if k == "t"), "")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(expected, v) for k, v in fields)


def percentile(values: list[float], p: float) -> float | None:
    return round(values[min(len(values) - 1, int(p * len(values)))], 1) if values else None


def run_rate(rate: float, seconds: float, client: Any, receiver: Receiver, secret: str, sqs: Any, queue_url: str,
             metrics_port: int, pids: dict[str, int], counter: list[int]) -> dict[str, Any]:
    """Create `rate` contacts per second for `seconds`, then wait for every delivery (at most 60 s)."""
    per_request = 10
    interval = per_request / rate
    cpu_before = {name: api_bench.proc_cpu_seconds(pid) for name, pid in pids.items()}
    jobs_before = worker_counter(metrics_port, "crm_jobs_processed_total")
    failed_before = worker_counter(metrics_port, "crm_jobs_failed_total")
    receiver.take()
    deepest, created = 0, 0
    started = time.monotonic()
    next_at = started
    while time.monotonic() - started < seconds:
        batch = [{"first_name": f"Hook{counter[0] + i}", "email": f"hook{counter[0] + i}@bench.example"}
                 for i in range(per_request)]
        counter[0] += per_request
        status, body = client.request("POST", "/v1/contacts/batch/create", {"inputs": batch})
        if status != 200:
            sys.exit(f"bench: batch create failed {status} {body[:300]!r}")
        created += per_request
        next_at += interval
        if int(time.monotonic() - started) != int(next_at - started):
            deepest = max(deepest, queue_depth(sqs, queue_url))
        time.sleep(max(0.0, next_at - time.monotonic()))
    produced_for = time.monotonic() - started
    arrivals: list[tuple[float, bytes, str]] = []
    deadline = time.monotonic() + 60
    while len(arrivals) < created and time.monotonic() < deadline:
        arrivals += receiver.take()
        deepest = max(deepest, queue_depth(sqs, queue_url))
        time.sleep(0.2)
    drained_after = time.monotonic() - started
    jobs = worker_counter(metrics_port, "crm_jobs_processed_total") - jobs_before
    failed = worker_counter(metrics_port, "crm_jobs_failed_total") - failed_before
    cpu = {name: round(api_bench.proc_cpu_seconds(pid) - cpu_before[name], 1) for name, pid in pids.items()}
    latencies, verified = [], 0
    for arrived, body, header in arrivals:
        event = json.loads(body)["event"]
        occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).timestamp()
        latencies.append((arrived - occurred) * 1000)
        verified += verify(secret, header, body)
    latencies.sort()
    return {
        "events_per_second_offered": rate, "events": created, "produced_for_s": round(produced_for, 1),
        "delivered": len(arrivals), "signatures_verified": verified, "jobs_done": int(jobs), "jobs_failed": int(failed),
        "jobs_per_second": round(jobs / drained_after, 1), "deepest_queue": deepest,
        "drained_after_s": round(drained_after, 1),
        "latency_ms": {"p50": percentile(latencies, 0.50), "p95": percentile(latencies, 0.95),
                       "p99": percentile(latencies, 0.99), "max": round(latencies[-1], 1) if latencies else None},
        "cpu_seconds": cpu,
        "worker_cpu_ms_per_job": round(1000 * cpu.get("worker", 0) / max(jobs, 1), 2),
        "moto_cpu_ms_per_job": round(1000 * cpu.get("moto", 0) / max(jobs, 1), 2),
    }


# ---- an export behind an import ------------------------------------------------------------------------
def wait_for(what: str, check: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    sys.exit(f"bench: {what} did not happen within {timeout:.0f} s")


def export_behind_import(client: Any, receiver: Receiver, sqs: Any, queue_urls: list[str], rows: int) -> dict[str, Any]:
    """Import `rows` contacts; the moment the import is completed, ask for an export and time it."""
    import urllib.request

    receiver.take()
    status, body = client.request("POST", "/v1/imports", {"object_type": "contacts", "file_name": "bench.csv"})
    if status != 201:
        sys.exit(f"bench: could not create the import: {status} {body[:300]!r}")
    made = json.loads(body)
    csv_text = "email,first_name\n" + "".join(f"import{i}@bench.example,Imported{i}\n" for i in range(rows))
    put = urllib.request.Request(made["upload_url"], data=csv_text.encode(), method="PUT",
                                 headers={"Content-Type": "text/csv"})
    urllib.request.urlopen(put, timeout=30).read()
    status, body = client.request("POST", f"/v1/imports/{made['id']}/commit",
                                  {"mapping": {"email": "email", "first_name": "first_name"}})
    if status != 202:
        sys.exit(f"bench: could not commit the import: {status} {body[:300]!r}")
    committed_at = time.monotonic()

    def import_finished() -> dict[str, Any] | None:
        got = json.loads(client.request("GET", f"/v1/imports/{made['id']}")[1])
        return got if got["status"] in ("completed", "failed") else None

    imported = wait_for("the import", import_finished, 600)
    import_seconds = time.monotonic() - committed_at
    arrived: list[tuple[float, bytes, str]] = receiver.take()
    undelivered = rows - len(arrived)  # the backlog ahead of the export: relayed or not, not yet delivered
    depths = {url.rsplit("/", 1)[-1]: queue_depth(sqs, url) for url in queue_urls}
    asked_at = time.monotonic()
    status, body = client.request("POST", "/v1/exports", {"object_type": "contacts", "format": "csv"})
    if status != 202:
        sys.exit(f"bench: could not ask for the export: {status} {body[:300]!r}")
    export_id = json.loads(body)["id"]

    def export_finished() -> dict[str, Any] | None:
        got = json.loads(client.request("GET", f"/v1/exports/{export_id}")[1])
        return got if got["status"] in ("completed", "failed") else None

    exported = wait_for("the export", export_finished, 900, interval=0.02)
    export_seconds = time.monotonic() - asked_at
    waited = (datetime.fromisoformat(exported["started_at"].replace("Z", "+00:00"))
              - datetime.fromisoformat(exported["created_at"].replace("Z", "+00:00"))).total_seconds()

    def all_delivered() -> bool:
        arrived.extend(receiver.take())
        return len(arrived) >= rows

    wait_for("the import's deliveries", all_delivered, 1800, interval=0.2)
    return {
        "import_rows": rows, "import_status": imported["status"], "import_seconds": round(import_seconds, 1),
        "deliveries_pending_when_export_asked": undelivered, "queue_depths_when_export_asked": depths,
        "export_status": exported["status"],
        "export_rows": exported["row_count"], "export_latency_s": round(export_seconds, 2),
        "export_waited_to_start_s": round(waited, 2),
        "deliveries": len(arrived), "deliveries_done_after_export_asked_s": round(time.monotonic() - asked_at, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="mysql+pymysql://root@127.0.0.1:3306/crm_bench_worker")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--threads", type=int, default=8, help="worker consumer threads")
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 25, 50, 100], help="events per second")
    parser.add_argument("--seconds", type=float, default=30, help="how long each rate is offered")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenarios", default="pipeline",
                        help="comma-separated: pipeline (the steady rates), export_behind_import")
    parser.add_argument("--import-rows", type=int, default=1000, help="rows of the export_behind_import import")
    parser.add_argument("--at", help="measure the app of this git commit (the bench script stays this one)")
    args = parser.parse_args()
    args.port = args.port or api_bench.free_port()
    scenarios = set(args.scenarios.split(","))
    if not scenarios <= {"pipeline", "export_behind_import"}:
        sys.exit(f"bench: unknown scenarios {sorted(scenarios - {'pipeline', 'export_behind_import'})}")
    RESULTS.mkdir(exist_ok=True)
    if args.at:
        import tempfile

        api_bench.APP_DIR = Path(tempfile.mkdtemp(prefix="crm-bench-worker-")) / "src"
        api_bench.log(f"measuring commit {api_bench.export_revision(args.at, api_bench.APP_DIR)[:12]} ({args.at})")

    api_bench.reset_database(args.database_url)
    api_bench.reset_redis(args.redis_url)
    moto_port = api_bench.free_port()
    moto = start_moto(moto_port, RESULTS / "moto.log")
    endpoint = f"http://127.0.0.1:{moto_port}"
    sqs, s3 = aws_clients(endpoint)
    queue_urls = create_queues(sqs, s3, "crm-jobs-bench")
    queue_url = queue_urls[0]
    env = api_bench.server_env(args)
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1", "JOBS_QUEUE_NAME": "crm-jobs-bench", "WORKER_WAIT_SECONDS": "1",
                "RELAY_IDLE_SECONDS": "0.02", "WEBHOOK_ALLOWED_PRIVATE_CIDRS": '["127.0.0.0/8"]',
                "LOG_LEVEL": "WARNING"})
    api_bench.run_cli(["migrate"], env)
    workspace = json.loads(api_bench.run_cli(["workspace", "create", "--name", "Bench worker",
                                              "--owner-email", "bench@example.com"], env))
    server = api_bench.start_server(args, env, RESULTS / "server-worker-bench.log", workers=1, threads=8)
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
                               "worker_threads": args.threads, "app": args.at or "working tree", "rates": []}
    receiver = Receiver()
    worker = None
    try:
        client = api_bench.Http(args.port, workspace["api_key"])
        status, body = client.request("POST", "/v1/webhooks", {
            "url": f"http://127.0.0.1:{receiver.port}/hook", "event_types": ["contact.created"]})
        if status != 201:
            sys.exit(f"bench: could not create the webhook subscription: {status} {body[:300]!r}")
        secret = json.loads(body)["secret"]
        metrics_port = api_bench.free_port()
        worker = start_worker(env, args.threads, metrics_port, RESULTS / "worker-bench.log")
        wait_metrics(metrics_port)
        pids = {"api": server.proc.pid, "worker": worker.pid, "moto": moto.pid}
        pids.update({f"api_worker_{i}": pid for i, pid in enumerate(server.worker_pids())})
        counter = [0]
        for rate in args.rates if "pipeline" in scenarios else []:
            api_bench.log(f"{rate} events/s for {args.seconds} s")
            outcome = run_rate(rate, args.seconds, client, receiver, secret, sqs, queue_url, metrics_port, pids,
                               counter)
            results["rates"].append(outcome)
            api_bench.log(json.dumps(outcome))
        if "export_behind_import" in scenarios:
            api_bench.log(f"an export asked for right behind a {args.import_rows}-row import")
            results["export_behind_import"] = export_behind_import(client, receiver, sqs, queue_urls,
                                                                   args.import_rows)
            api_bench.log(json.dumps(results["export_behind_import"]))
    finally:
        if worker is not None:
            stop(worker)
        receiver.server.shutdown()
        server.stop()
        stop(moto)
    out = RESULTS / "worker-latest.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
