#!/usr/bin/env python
"""The load process of bench/realtime.py: N Socket.io clients on one realtime server, in one asyncio loop.

    python bench/realtime_clients.py --url http://127.0.0.1:PORT --keys keys.json --clients 1000 --out out.json

`keys.json` is a list of API keys (one per workspace); client i connects with key i % len(keys), over the
websocket transport. It prints `connected N` once every client is in (or `failed ...` and exits 1), then
records every `event` it gets: when it arrived (time.time()) minus the event's `occurred_at` (stamped in the
API's transaction, so this is commit→client plus the rest of that transaction, a few ms), its sequence and
workspace. On SIGTERM (or SIGINT) it disconnects everyone and writes the summary to `--out`:
arrivals, per-client duplicates and gaps in the sequence, latency percentiles, and how many clients the server
disconnected. It is its own process so the clients' CPU is not the server's.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import socketio


def occurred_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Listener:
    def __init__(self, index: int, url: str, key: str) -> None:
        self.index, self.url, self.key = index, url, key
        self.client = socketio.AsyncClient(reconnection=False)
        self.latencies: list[float] = []
        self.sequences: dict[str, list[int]] = {}
        self.dropped = False
        self.client.on("event", self.on_event)
        self.client.on("disconnect", self.on_disconnect)

    async def on_event(self, event: dict[str, Any]) -> None:
        arrived = time.time()
        self.latencies.append(arrived - occurred_epoch(event["occurred_at"]))
        self.sequences.setdefault(event["workspace_id"], []).append(int(event["sequence"]))

    async def on_disconnect(self, reason: Any = None) -> None:
        self.dropped = True

    async def connect(self) -> None:
        await self.client.connect(self.url, transports=["websocket"], auth={"token": self.key},
                                  wait_timeout=30)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--keys", required=True, type=Path)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=50, help="connections opened at once")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    keys = json.loads(args.keys.read_text())
    listeners = [Listener(i, args.url, keys[i % len(keys)]) for i in range(args.clients)]
    gate = asyncio.Semaphore(args.parallel)

    async def connect(listener: Listener) -> None:
        async with gate:
            await listener.connect()

    started = time.monotonic()
    try:
        await asyncio.gather(*(connect(listener) for listener in listeners))
    except Exception as failed:  # reported to the driver, which stops the run
        print(f"failed {type(failed).__name__}: {failed}", flush=True)
        sys.exit(1)
    print(f"connected {len(listeners)} in {time.monotonic() - started:.1f} s", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    dropped = sum(1 for listener in listeners if listener.dropped)
    latencies = [lat for listener in listeners for lat in listener.latencies]
    duplicates = gaps = 0
    for listener in listeners:
        for sequence in listener.sequences.values():
            duplicates += len(sequence) - len(set(sequence))
            ordered = sorted(set(sequence))
            gaps += sum(b - a - 1 for a, b in itertools.pairwise(ordered))
    summary = {"clients": len(listeners), "dropped_by_server": dropped, "arrivals": len(latencies),
               "duplicates": duplicates, "gaps": gaps,
               "latency_ms": {f"p{p}": round(1000 * v, 1) if (v := percentile(latencies, p)) is not None else None
                              for p in (50, 95, 99, 100)},
               "latency_mean_ms": round(1000 * sum(latencies) / len(latencies), 1) if latencies else None}
    await asyncio.gather(*(listener.client.disconnect() for listener in listeners), return_exceptions=True)
    args.out.write_text(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
