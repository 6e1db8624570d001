#!/usr/bin/env python
"""The real-time tier benchmark: `python bench/realtime.py`.

Real processes on loopback: MariaDB + Redis, moto's server standing in for SQS, `crm serve` (the API,
1 process), `crm worker` (its outbox relay announces committed events on Redis), one `crm realtime`
process, and a separate load process (bench/realtime_clients.py) holding --clients Socket.io clients
(websocket transport) spread evenly over --workspaces workspaces.

1. Fresh database and Redis db, `crm migrate`, --workspaces workspaces (one API key each).
2. Starts the processes; measures the realtime process's RSS with no client, then connects every client and
   measures it again (memory per connection = the difference / clients).
3. Writes contacts through `POST /v1/contacts/batch/create` (10 per request, workspaces in turn) at --rate
   events/s for --seconds; every event goes to each of its workspace's clients, so deliveries/s =
   rate × clients / workspaces.
4. Waits until the deliveries stop arriving, stops the clients, and reports: events/s written, deliveries/s,
   occurred_at→client latency p50/p95/p99/max, deliveries missing (expected − arrived), duplicates and gaps
   per client (must be 0), clients the server dropped as too slow, the CPU each process used, and RSS.

Several --rate values run one after the other with the same clients (each a fresh load process).
Results go to bench/results/realtime-latest.json. Only loopback traffic; every step has a time bound.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benches' helpers (scripts, not a package)
import run as api_bench
import worker as worker_bench

RESULTS = api_bench.RESULTS_DIR


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_realtime(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    out = open(log_path, "wb")
    proc = subprocess.Popen([api_bench.crm_executable(), "realtime", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1"], env=env, cwd=api_bench.APP_DIR, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: crm realtime exited with {proc.returncode}; log:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.2)
    sys.exit("bench: crm realtime did not answer /health within 60 s")


def serving_pid(proc: subprocess.Popen[bytes]) -> int:
    """granian serves from a child process: the busiest descendant is the one holding the sockets."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return max(kids, key=rss_mb) if kids else proc.pid


def start_clients(url: str, keys_file: Path, clients: int, out: Path, log_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("realtime_clients.py")), "--url", url,
                             "--keys", str(keys_file), "--clients", str(clients), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=open(log_path, "w"), text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("connected"):
        proc.kill()
        sys.exit(f"bench: the clients did not connect: {line!r}; log:\n{log_path.read_text()[-3000:]}")
    api_bench.log(line)
    return proc


def metric_sum_count(url: str, name: str) -> tuple[float, float]:
    """A histogram's _sum and _count on a /metrics page."""
    import urllib.request

    text = urllib.request.urlopen(url, timeout=5).read().decode()
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def mean_ms(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    count = after[1] - before[1]
    return round(1000 * (after[0] - before[0]) / count, 1) if count else None


def write_at_rate(rate: float, seconds: float, clients: list[api_bench.Http]) -> dict[str, Any]:
    """`rate` contacts/s (batches of 10, workspaces in turn) for `seconds`; returns what was written."""
    per_request = 10
    interval = per_request / rate
    written = [0] * len(clients)
    errors = [0]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    serial = [0]
    run = f"{int(rate)}x{os.getpid()}x{int(time.time())}"

    def one(index: int) -> None:
        with lock:
            serial[0] += 1
            n = serial[0]
        # Unique across runs too: a repeated email is refused (207, that input failed) and writes no event.
        inputs = [{"email": f"rt{run}-{n}-{i}@bench.example", "first_name": f"R{n}"} for i in range(per_request)]
        status, _ = clients[index].request("POST", "/v1/contacts/batch/create", {"inputs": inputs})
        with lock:
            if status in (200, 201):
                written[index] += per_request
            else:
                errors[0] += 1
                statuses[status] = statuses.get(status, 0) + 1

    started = time.monotonic()
    sent = 0
    with ThreadPoolExecutor(max_workers=16) as pool:
        while (now := time.monotonic()) - started < seconds:
            due = started + sent * interval
            if now < due:
                time.sleep(due - now)
            pool.submit(one, sent % len(clients))
            sent += 1
    elapsed = time.monotonic() - started
    return {"written": written, "errors": errors[0], "error_statuses": statuses, "seconds": round(elapsed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="mysql+pymysql://root@127.0.0.1:3306/crm_bench_realtime")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 250, 500], help="events per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-workers", type=int, default=1,
                        help="crm serve --workers of the API that takes the writes")
    args = parser.parse_args()
    args.port = args.port or api_bench.free_port()
    RESULTS.mkdir(exist_ok=True)
    api_bench.reset_database(args.database_url)
    api_bench.reset_redis(args.redis_url)
    moto_port = api_bench.free_port()
    moto = worker_bench.start_moto(moto_port, RESULTS / "moto-realtime.log")
    endpoint = f"http://127.0.0.1:{moto_port}"
    sqs, s3 = worker_bench.aws_clients(endpoint)
    worker_bench.create_queues(sqs, s3, "crm-jobs-rt")
    env = api_bench.server_env(args)
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1", "JOBS_QUEUE_NAME": "crm-jobs-rt", "WORKER_WAIT_SECONDS": "1",
                "RELAY_IDLE_SECONDS": "0.02", "REALTIME_CHANNEL": f"crm:bench:{os.getpid()}",
                "AUTH_FAILURE_LIMIT": "1000000"})
    api_bench.run_cli(["migrate"], env)
    keys = []
    for n in range(args.workspaces):
        created = json.loads(api_bench.run_cli(["workspace", "create", "--name", f"RT {n}",
                                                "--owner-email", f"rt{n}@bench.example"], env))
        keys.append(created["api_key"])
    keys_file = RESULTS / "realtime-keys.json"
    keys_file.write_text(json.dumps(keys))
    server = api_bench.start_server(args, env, RESULTS / "server-realtime-bench.log", workers=args.api_workers,
                                    threads=8)
    metrics_port = api_bench.free_port()
    worker = worker_bench.start_worker(env, 2, metrics_port, RESULTS / "worker-realtime-bench.log")
    worker_bench.wait_metrics(metrics_port)
    rt_port = api_bench.free_port()
    realtime = start_realtime(env, rt_port, RESULTS / "realtime-bench.log")
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
                               "clients": args.clients, "workspaces": args.workspaces, "runs": []}
    try:
        rt_pid = serving_pid(realtime)
        results["realtime_rss_mb_idle"] = round(rss_mb(rt_pid), 1)
        https = [api_bench.Http(args.port, key) for key in keys]
        pids = {"api": [server.proc.pid, *server.worker_pids()], "worker": [worker.pid], "realtime": [rt_pid],
                "moto": [moto.pid]}
        for rate in args.rates:
            out = RESULTS / f"realtime-clients-{int(rate)}.json"
            clients = start_clients(f"http://127.0.0.1:{rt_port}", keys_file, args.clients, out,
                                    RESULTS / "realtime-clients.log")
            connected_rss = rss_mb(rt_pid)
            results.setdefault("realtime_rss_mb_connected", round(connected_rss, 1))
            results.setdefault("kb_per_connection", round(
                1024 * (connected_rss - results["realtime_rss_mb_idle"]) / args.clients, 1))
            relay_url, rt_url = f"http://127.0.0.1:{metrics_port}/metrics", f"http://127.0.0.1:{rt_port}/metrics"
            relay_before = metric_sum_count(relay_url, "crm_outbox_lag_seconds")
            emit_before = metric_sum_count(rt_url, "crm_realtime_commit_to_emit_seconds")
            cpu_before = {name: sum(api_bench.proc_cpu_seconds(p) for p in ps) for name, ps in pids.items()}
            clients_cpu_before = api_bench.proc_cpu_seconds(clients.pid)
            api_bench.log(f"{rate} events/s for {args.seconds} s to {args.clients} clients")
            wrote = write_at_rate(rate, args.seconds, https)
            expected = sum(w * (args.clients // args.workspaces + (1 if i < args.clients % args.workspaces else 0))
                           for i, w in enumerate(wrote["written"]))
            time.sleep(3)  # let the tail arrive; the count below says whether it did
            cpu = {name: round(sum(api_bench.proc_cpu_seconds(p) for p in ps) - cpu_before[name], 1)
                   for name, ps in pids.items()}
            cpu["clients"] = round(api_bench.proc_cpu_seconds(clients.pid) - clients_cpu_before, 1)
            rss_end = rss_mb(rt_pid)
            # Where the time goes, as means from the processes' own histograms (occurred_at is stamped when the
            # write's transaction adds the event, so every figure includes the rest of that transaction).
            breakdown = {"occurred_to_relayed_mean_ms": mean_ms(relay_before, metric_sum_count(
                             relay_url, "crm_outbox_lag_seconds")),
                         "occurred_to_emitted_mean_ms": mean_ms(emit_before, metric_sum_count(
                             rt_url, "crm_realtime_commit_to_emit_seconds"))}
            clients.send_signal(signal.SIGTERM)
            clients.wait(120)
            summary = json.loads(out.read_text())
            events = sum(wrote["written"])
            run = {"rate_offered": rate, "events_written": events, "write_errors": wrote["errors"],
                   "write_error_statuses": wrote["error_statuses"],
                   "events_per_s": round(events / wrote["seconds"], 1),
                   "deliveries_expected": expected, "deliveries": summary["arrivals"],
                   "deliveries_per_s": round(summary["arrivals"] / wrote["seconds"], 1),
                   "missing": expected - summary["arrivals"], "duplicates": summary["duplicates"],
                   "gaps": summary["gaps"], "dropped_by_server": summary["dropped_by_server"],
                   "latency_ms": summary["latency_ms"], "latency_mean_ms": summary.get("latency_mean_ms"),
                   "breakdown": breakdown, "cpu_seconds": cpu,
                   "realtime_rss_mb_end": round(rss_end, 1)}
            results["runs"].append(run)
            api_bench.log(json.dumps(run))
    finally:
        for proc in (realtime, worker):
            worker_bench.stop(proc)
        server.stop()
        worker_bench.stop(moto)
    (RESULTS / "realtime-latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
