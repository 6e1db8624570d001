"""Other tiers beside the API while bench/run.py measures it: `--alongside worker` or `--alongside realtime`.

The api tier does no real-time work itself (its requests write the outbox row in their transaction; the
worker's relay publishes and announces it after COMMIT), so the real-time tier can only cost the REST figures
through the machine they share. To see how much, run the same scenarios three ways:

- `none` (the default): the API alone, as every other figure in bench/README.md;
- `worker`: moto's server for SQS and `crm worker` (2 threads) relaying every event the scenarios write and
  running the jobs they cause — what production always runs beside the API;
- `realtime`: the same, plus one `crm realtime` process and --realtime-clients Socket.io clients in a separate
  load process (bench/realtime_clients.py). Client i connects with key i % 100: the bench workspace is one of
  100 slots, so 1 % of the clients (10 of 1,000) follow the workspace the scenarios write — a sales team's
  open screens — and the rest sit on 19 other workspaces (idle connections: pings, re-checks, presence).

The real-time tier runs on its own tasks in production; on this 2-core box it and its clients take CPU from
the API, so `realtime` vs `worker` is an upper bound of its cost. Not with --at (the extra processes run the
working tree).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import realtime as rt_bench
import run as api_bench
import worker as worker_bench
from sqlalchemy import create_engine, text

OTHER_WORKSPACES = 19
SLOTS = 100  # client i uses keys[i % SLOTS]; the bench workspace holds slot 0


class Alongside:
    def __init__(self, mode: str, env: dict[str, str], api_key: str, clients: int, database_url: str) -> None:
        self.mode, self.clients_wanted, self.database_url = mode, clients, database_url
        self.env = dict(env)
        self.api_key = api_key
        self.procs: list[subprocess.Popen[Any]] = []
        self.clients: subprocess.Popen[str] | None = None
        self.realtime_pid: int | None = None
        self.info: dict[str, Any] = {"mode": mode}

    def start(self) -> dict[str, Any]:
        results = api_bench.RESULTS_DIR
        moto_port = api_bench.free_port()
        moto = worker_bench.start_moto(moto_port, results / "moto-alongside.log")
        self.procs.append(moto)
        endpoint = f"http://127.0.0.1:{moto_port}"
        sqs, s3 = worker_bench.aws_clients(endpoint)
        worker_bench.create_queues(sqs, s3, "crm-jobs-alongside")
        self.env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                         "AWS_DEFAULT_REGION": "us-east-1", "JOBS_QUEUE_NAME": "crm-jobs-alongside",
                         "WORKER_WAIT_SECONDS": "1", "REALTIME_CHANNEL": f"crm:bench:alongside:{os.getpid()}",
                         "AUTH_FAILURE_LIMIT": "1000000"})
        metrics_port = api_bench.free_port()
        self.procs.append(worker_bench.start_worker(self.env, 2, metrics_port, results / "worker-alongside.log"))
        worker_bench.wait_metrics(metrics_port)
        api_bench.log(f"alongside: crm worker (relay + jobs) on moto {endpoint}; waiting for the seeding's events")
        self.info["seed_backlog_relayed_seconds"] = self.wait_relayed(600)
        if self.mode == "realtime":
            keys = [self.api_key]
            for n in range(OTHER_WORKSPACES):
                created = json.loads(api_bench.run_cli(["workspace", "create", "--name", f"Alongside {n}",
                                                        "--owner-email", f"along{n}@bench.example"], self.env))
                keys.append(created["api_key"])
            slots = [keys[0]] + [keys[1 + i % OTHER_WORKSPACES] for i in range(SLOTS - 1)]
            keys_file = results / "alongside-keys.json"
            keys_file.write_text(json.dumps(slots))
            port = api_bench.free_port()
            proc = rt_bench.start_realtime(self.env, port, results / "realtime-alongside.log")
            self.procs.append(proc)
            self.realtime_pid = rt_bench.serving_pid(proc)
            self.clients = rt_bench.start_clients(f"http://127.0.0.1:{port}", keys_file, self.clients_wanted,
                                                  results / "realtime-clients-alongside.json",
                                                  results / "realtime-clients-alongside.log")
            following = len(range(0, self.clients_wanted, SLOTS))
            self.info.update({"realtime_clients": self.clients_wanted, "following_bench_workspace": following})
            api_bench.log(f"alongside: crm realtime with {self.clients_wanted} clients ({following} follow the bench "
                          f"workspace)")
        return self.info

    def wait_relayed(self, timeout: float) -> float:
        """Seconds until no outbox row is unpublished (the relay has caught up)."""
        engine = create_engine(self.database_url)
        started = time.monotonic()
        try:
            while True:
                with engine.connect() as conn:
                    left = conn.execute(text("SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL")).scalar()
                if not left:
                    return round(time.monotonic() - started, 1)
                if time.monotonic() - started > timeout:
                    raise SystemExit(f"bench: the relay left {left} outbox rows after {timeout} s")
                time.sleep(1)
        finally:
            engine.dispose()

    def pids(self) -> list[int]:
        """The extra processes whose CPU the report attributes to the tiers beside the API."""
        pids = [p.pid for p in self.procs]
        if self.realtime_pid is not None:
            pids.append(self.realtime_pid)
        if self.clients is not None:
            pids.append(self.clients.pid)
        return pids

    def stop(self) -> dict[str, Any]:
        if self.clients is not None and self.clients.poll() is None:
            self.clients.send_signal(signal.SIGTERM)
            try:
                self.clients.wait(120)
                summary = json.loads(Path(api_bench.RESULTS_DIR / "realtime-clients-alongside.json").read_text())
                self.info["realtime_deliveries"] = summary["arrivals"]
                self.info["realtime_latency_ms"] = summary["latency_ms"]
                self.info["realtime_duplicates"] = summary["duplicates"]
                self.info["realtime_gaps"] = summary["gaps"]
            except (subprocess.TimeoutExpired, OSError, ValueError, KeyError):
                self.clients.kill()
        for proc in reversed(self.procs):
            worker_bench.stop(proc)
        return self.info
