#!/usr/bin/env python
"""The API-tier benchmark: one command, `python bench/run.py`.

1. Drops and re-creates the bench database, flushes the bench Redis db, runs `crm migrate` and
   `crm workspace create` (CRM_ENV=test, ACCESS_LOG=false, rate limits set so high that the
   limiter counts on every request but never refuses).
2. Starts `crm serve` (granian, WSGI) as a subprocess on loopback and waits for /ready.
3. Seeds 2,000 companies and 10,000 contacts through the batch endpoints (100 per request, a few
   requests in parallel) and reports how long that took.
   For the CRM-core scenarios it also seeds 2,000 deals in the default pipeline (batch endpoint),
   200 activities on one contact (batch endpoint), and a second workspace whose default pipeline gets
   100,000 deals bulk-inserted straight into MariaDB (bench/bulk_deals.py; through the API that would
   take minutes). Every seeding step is timed.
4. Drives each scenario with wrk (a separate C process, LuaJIT scripts in bench/lua/) at
   --connections concurrent connections: hello (GET /health), get_contact (cached), list_contacts,
   search_contacts, create_contact, move_deal_stage, pipeline_board, contact_timeline,
   pipeline_summary_100k.
5. Prints req/s, p50/p95/p99, errors and the ratio to hello, checks the targets of issue 2, and
   writes everything as JSON (default bench/results/latest.json).
6. Stops the server with SIGTERM (in-flight requests finish) and cleans up.

Only loopback traffic; every step has a time bound. See bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
APP_DIR = ROOT  # where the crm processes run from; --at REV points it at an exported commit
LUA_DIR = BENCH_DIR / "lua"
RESULTS_DIR = BENCH_DIR / "results"

N_COMPANIES = 2_000
N_CONTACTS = 10_000
BATCH = 100
GET_ID_SET = 1_000  # get_contact rotates over this many seeded ids (all warmed into the cache first)
N_DEALS = 2_000  # in the default pipeline, through POST /v1/deals/batch/create
N_MOVE_DEALS = 1_000  # of them, created in the first open stage; move_deal_stage rotates over these
TIMELINE_ACTIVITIES = 200  # on one contact, through POST /v1/activities/batch/create
N_BULK_DEALS = 100_000  # live deals bulk-inserted for pipeline_summary_100k (bench/bulk_deals.py)
N_BULK_ARCHIVED = 2_000  # archived ones on top (the summary must skip them)
BULK_CHUNK = 5_000

# The search scenario: one filter + one full-text word. ~30% of contacts are leads and ~20% of
# job titles contain "engineer", so the pair matches ~6% of the workspace (~600 contacts).
SEARCH_BODY = {
    "filter_groups": [{"filters": [{"property": "lifecycle_stage", "operator": "EQ", "value": "lead"}]}],
    "query": "engineer",
    "limit": 50,
}

# Issue 2, "Tests and benchmark": targets on the 2-core machine.
TARGET_RPS = {"get_contact": 2_000, "list_contacts": 800, "search_contacts": 300, "create_contact": 400}
TARGET_P95_MS = 25.0

SCENARIOS = ("hello", "get_contact", "list_contacts", "search_contacts", "create_contact",
             "move_deal_stage", "pipeline_board", "contact_timeline", "pipeline_summary_100k")
DEAL_SCENARIOS = ("move_deal_stage", "pipeline_board")
PATHS = {
    "hello": "/health",
    "get_contact": "/v1/contacts",  # the Lua script appends /{id}
    "list_contacts": "/v1/contacts?limit=50",
    "search_contacts": "/v1/contacts/search",
    "create_contact": "/v1/contacts",
    "move_deal_stage": "/v1/deals",  # the Lua script posts to /{id}/stage
    # Filled in after seeding (ids): see FIXTURES.
    "pipeline_board": "/v1/pipelines/{pipeline_id}/board",
    "contact_timeline": "/v1/contacts/{contact_id}/timeline",
    "pipeline_summary_100k": "/v1/reports/pipeline-summary?pipeline_id={pipeline_id}",
}
# Per scenario, set up by seeding: "path" (the URL path wrk requests), "api_key" (another workspace's),
# "env" (extra environment for the Lua script).
FIXTURES: dict[str, dict[str, Any]] = {}


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def crm_executable() -> str:
    candidate = Path(sys.executable).parent / "crm"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("crm")
    if not found:
        sys.exit("bench: the `crm` command is not installed (activate the venv: . .venv/bin/activate)")
    return found


class Http:
    """A keep-alive HTTP/1.1 client on loopback, one connection per thread (used for set-up only)."""

    def __init__(self, port: int, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.port, self.api_key, self.timeout = port, api_key, timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return conn

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# 1. Database, Redis, migrations, workspace
# ---------------------------------------------------------------------------------------------

def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CRM_ENV": "test",  # production refuses the embedded defaults; test behaves like production otherwise
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CURSOR_SECRET": "bench-cursor-secret-" + os.urandom(8).hex(),
        # One JSON log line per request to a file would measure the disk, not the API.
        "ACCESS_LOG": "false",
        # The limiter still runs on every request (a Redis INCR+EXPIRE pipeline) but never refuses.
        "RATE_LIMIT_WORKSPACE": "100000000",
        "RATE_LIMIT_CREDENTIAL": "100000000",
        "LOG_LEVEL": "WARNING",
        # Longer than any run, so entries warmed before get_contact cannot expire during it.
        "CACHE_TTL_SECONDS": "3600",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("SENTRY_DSN", None)
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    if APP_DIR != ROOT:  # --at REV: the exported tree shadows the editable install (PathFinder runs first)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APP_DIR), env.get("PYTHONPATH")) if p)
    return env


def export_revision(rev: str, into: Path) -> str:
    """`git archive REV` into `into`, so a commit can be measured while the working tree is being edited."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                         capture_output=True, text=True, timeout=30)
    if sha.returncode != 0:
        sys.exit(f"bench: --at {rev}: not a commit ({sha.stderr.strip()})")
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", "--format=tar", sha.stdout.strip()],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True, timeout=120)
    archive.stdout.close()  # type: ignore[union-attr]
    if archive.wait(timeout=60) != 0:
        sys.exit(f"bench: git archive {rev} failed")
    return sha.stdout.strip()


def imported_from(env: dict[str, str]) -> str:
    """Where the crm processes will import the app from (checks that --at really took effect)."""
    proc = subprocess.run([sys.executable, "-c", "import layers, os; print(os.path.dirname(os.path.dirname("
                           "os.path.abspath(layers.__file__))))"], env=env, cwd=APP_DIR, capture_output=True,
                          text=True, timeout=60)
    return proc.stdout.strip() or proc.stderr.strip()[-300:]


def reset_database(url: str) -> None:
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if not u.drivername.startswith("mysql") or not u.database:
        sys.exit(f"bench: --database-url must be a mysql+pymysql URL with a database name, not {url}")
    if not re.fullmatch(r"[A-Za-z0-9_]+", u.database):
        sys.exit(f"bench: refusing odd database name {u.database!r}")
    conn = pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{u.database}`")
            cur.execute(f"CREATE DATABASE `{u.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def reset_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    client.flushdb()
    client.close()


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run([crm_executable(), *args], env=env, cwd=APP_DIR, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        sys.exit(f"bench: `crm {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------
# 2. The server
# ---------------------------------------------------------------------------------------------

@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log_file: Any
    workers: int = 0
    threads: int = 0

    def worker_pids(self) -> list[int]:
        """granian's worker processes: children of the `crm serve` process."""
        try:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True,
                                 text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [int(p) for p in out.split()]

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            log(f"stopping server (SIGTERM to pid {self.proc.pid})")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log("server did not stop in time; SIGKILL to its process group")
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what we started
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.log_file.close()
        return self.proc.returncode


def start_server(args: argparse.Namespace, env: dict[str, str], log_path: Path, workers: int,
                 threads: int) -> Server:
    log_file = open(log_path, "wb")
    cmd = [crm_executable(), "serve", "--host", "127.0.0.1", "--port", str(args.port),
           "--workers", str(workers), "--threads", str(threads)]
    log(f"starting: {' '.join(cmd[1:])}  (log: {log_path.relative_to(ROOT)})")
    proc = subprocess.Popen(cmd, env=env, cwd=APP_DIR, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = Server(proc, args.port, log_path, log_file, workers, threads)
    deadline = time.monotonic() + 60
    http_ = Http(args.port, timeout=2)
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_file.flush()
            sys.exit(f"bench: server exited with {proc.returncode}; log:\n{log_path.read_text()[-4000:]}")
        try:
            status, body = http_.request("GET", "/ready")
            if status == 200:
                return server
            last = f"{status} {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    server.stop()
    sys.exit(f"bench: server not ready within 60 s (last: {last}); log:\n{log_path.read_text()[-4000:]}")


# ---------------------------------------------------------------------------------------------
# 3. Seeding
# ---------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Olivia Liam Emma Noah Amelia Oliver Ava Elijah Sophia Lucas Mia Mateo Isabella Levi Charlotte Ethan "
    "Harper James Evelyn Leo Aisha Omar Fatima Yusuf Mei Hiroshi Yuki Kenji Priya Arjun Ananya Rohan Chloe "
    "Hugo Lea Louis Ines Jonas Lena Felix Sofia Marco Giulia Luca Elena Mateusz Zofia Jakub Nadia Ivan Olga "
    "Chinedu Amara Kwame Zanele Thabo Diego Valentina Santiago Camila"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Lewis "
    "Robinson Walker Young Allen King Wright Scott Nguyen Tran Kim Park Chen Wang Li Zhang Tanaka Suzuki Sato "
    "Patel Shah Singh Kumar Muller Schmidt Schneider Fischer Rossi Russo Ferrari Kowalski Nowak Okafor Mensah "
    "Haddad Cohen Silva Santos Oliveira Dubois Moreau Laurent"
).split()
JOB_TITLES = (
    # ~20% contain "Engineer" (the search scenario's query word)
    ("Software Engineer", 6), ("Senior Software Engineer", 4), ("Sales Engineer", 3), ("Data Engineer", 3),
    ("Engineering Manager", 2),  # "engineering" also matches the prefix query "engineer*"
    ("Account Executive", 8), ("Sales Development Representative", 6), ("Marketing Manager", 6),
    ("Head of Marketing", 3), ("Product Manager", 6), ("Senior Product Manager", 3), ("Chief Executive Officer", 2),
    ("Chief Financial Officer", 2), ("Chief Technology Officer", 2), ("VP of Sales", 3), ("Operations Manager", 5),
    ("Customer Success Manager", 6), ("Office Manager", 3), ("HR Business Partner", 3), ("Recruiter", 3),
    ("Financial Analyst", 4), ("Procurement Specialist", 3), ("Designer", 3), ("Consultant", 5),
    ("Founder", 2), ("Controller", 2),
)
STAGES = (("subscriber", 15), ("lead", 30), ("qualified", 20), ("opportunity", 15), ("customer", 15), ("other", 5))
CONTACT_TAGS = ("newsletter", "webinar-2024", "trial", "vip", "partner", "churn-risk", "event-lead", "referral",
                "decision-maker", "champion")
COMPANY_WORDS_A = ("North", "Blue", "Silver", "Bright", "Green", "Red", "Iron", "Quantum", "Vertex", "Summit",
                   "Harbor", "Cedar", "Atlas", "Nova", "Pioneer", "Apex", "Granite", "Lumen", "Orbit", "Maple")
COMPANY_WORDS_B = ("wind", "stone", "field", "bridge", "works", "point", "wave", "path", "forge", "leaf",
                   "peak", "light", "gate", "line", "river", "crest", "spark", "core", "ridge", "loop")
COMPANY_SUFFIX = ("Labs", "Systems", "Analytics", "Logistics", "Health", "Foods", "Software", "Capital",
                  "Manufacturing", "Energy", "Media", "Robotics", "Partners", "Retail", "Bio")
TLDS = ("com", "io", "co", "net", "de", "fr", "co.uk", "ai")
INDUSTRIES = ("Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Logistics", "Energy",
              "Media", "Education", "Biotech", "Food & Beverage", "Consulting")
COMPANY_TAGS = ("enterprise", "mid-market", "smb", "target-account", "partner", "competitor", "customer")


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def make_companies(rng: random.Random) -> list[dict[str, Any]]:
    companies = []
    for i in range(N_COMPANIES):
        a, b, suffix = rng.choice(COMPANY_WORDS_A), rng.choice(COMPANY_WORDS_B), rng.choice(COMPANY_SUFFIX)
        name = f"{a}{b} {suffix}"
        domain = f"{a.lower()}{b}-{suffix.lower()}{i}.{rng.choice(TLDS)}"
        companies.append({
            "name": name,
            "domain": f"https://www.{domain}/" if i % 7 == 0 else domain,  # exercise the normaliser a bit
            "industry": rng.choice(INDUSTRIES),
            "employee_count": int(rng.lognormvariate(4, 1.5)) + 1,
            "tags": rng.sample(COMPANY_TAGS, rng.randint(0, 2)),
        })
    return companies


def make_contacts(rng: random.Random, companies: list[tuple[str, str]]) -> list[dict[str, Any]]:
    contacts = []
    for i in range(N_CONTACTS):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        contact: dict[str, Any] = {
            "first_name": first,
            "last_name": last,
            "job_title": _weighted(rng, JOB_TITLES),
            "lifecycle_stage": _weighted(rng, STAGES),
            "tags": rng.sample(CONTACT_TAGS, rng.randint(0, 3)),
        }
        if companies and rng.random() < 0.9:
            company_id, domain = rng.choice(companies)
            contact["company_id"] = company_id
            contact["email"] = f"{first}.{last}{i}@{domain}"  # mixed case: the API lower-cases it
        else:
            contact["email"] = f"{first.lower()}{i}@{rng.choice(('gmail.com', 'outlook.com', 'proton.me'))}"
        if rng.random() < 0.6:
            contact["phone"] = f"+1 {rng.randint(201, 989)} 555 {rng.randint(0, 9999):04d}"
        contacts.append(contact)
    return contacts


def batch_create(client: Http, obj: str, items: list[dict[str, Any]], parallel: int) -> list[dict[str, Any]]:
    chunks = [items[i:i + BATCH] for i in range(0, len(items), BATCH)]

    def one(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        status, body = client.request("POST", f"/v1/{obj}/batch/create", {"inputs": chunk})
        if status != 200:
            raise RuntimeError(f"batch create {obj}: {status} {body[:1000]!r}")
        results = json.loads(body)["results"]
        return [r["record"] for r in results]

    records: list[dict[str, Any]] = []
    with ThreadPoolExecutor(parallel) as pool:
        for chunk_records in pool.map(one, chunks):
            records.extend(chunk_records)
    return records


def seed(client: Http, parallel: int) -> dict[str, Any]:
    rng = random.Random(20240601)
    t0 = time.perf_counter()
    companies = batch_create(client, "companies", make_companies(rng), parallel)
    t1 = time.perf_counter()
    pairs = [(c["id"], c["domain"]) for c in companies]
    contacts = batch_create(client, "contacts", make_contacts(rng, pairs), parallel)
    t2 = time.perf_counter()
    return {
        "companies": len(companies),
        "contacts": len(contacts),
        "companies_seconds": round(t1 - t0, 2),
        "contacts_seconds": round(t2 - t1, 2),
        "total_seconds": round(t2 - t0, 2),
        "parallel_requests": parallel,
        "contact_records_per_second": round(len(contacts) / (t2 - t1), 1),
        "contact_ids": [c["id"] for c in contacts],
        "company_ids": [c["id"] for c in companies],
    }


DEAL_WORDS = ("Renewal", "Expansion", "New business", "Pilot", "Upsell", "Platform licence", "Services",
              "Support plan", "Migration", "Enterprise agreement")
DEAL_TAGS = ("inbound", "outbound", "partner", "q3-push", "strategic", "fast-track")
LOST_REASONS = ("price", "timing", "competitor", "no decision", "budget")
DEAL_CURRENCIES = ("USD", "EUR", "GBP")


def default_pipeline(client: Http) -> dict[str, Any]:
    status, body = client.request("GET", "/v1/pipelines")
    if status != 200:
        raise RuntimeError(f"GET /v1/pipelines: {status} {body[:500]!r}")
    pipelines = json.loads(body)["data"]
    found = next((p for p in pipelines if p["is_default"]), None)
    if found is None:
        raise RuntimeError("the bench workspace has no default pipeline")
    return found


def make_deals(rng: random.Random, stages: list[dict[str, Any]], company_ids: list[str],
               contact_ids: list[str]) -> list[dict[str, Any]]:
    """N_DEALS deals: the first N_MOVE_DEALS in the first open stage (move_deal_stage's set), the rest
    spread over every stage (a lost reason where the stage is lost). 90 % valued in USD/EUR/GBP,
    80 % with an expected close date, 70 % with a company, 60 % with a (primary) contact."""
    first_open = next(s for s in stages if s["kind"] == "open")
    today = datetime.date.today()
    deals = []
    for i in range(N_DEALS):
        stage = first_open if i < N_MOVE_DEALS else rng.choice(stages)
        deal: dict[str, Any] = {
            "name": f"{rng.choice(COMPANY_WORDS_A)}{rng.choice(COMPANY_WORDS_B)} - {rng.choice(DEAL_WORDS)} {i}",
            "stage_id": stage["id"],
            "tags": rng.sample(DEAL_TAGS, rng.randint(0, 2)),
        }
        if rng.random() < 0.9:
            deal["amount"] = f"{rng.randint(500, 2_000_000)}.{rng.randint(0, 99):02d}"
            deal["currency"] = rng.choice(DEAL_CURRENCIES)
        if stage["kind"] == "lost":
            deal["lost_reason"] = rng.choice(LOST_REASONS)
        if rng.random() < 0.8:
            deal["expected_close_date"] = str(today + datetime.timedelta(days=rng.randint(-30, 270)))
        if company_ids and rng.random() < 0.7:
            deal["company_id"] = rng.choice(company_ids)
        if contact_ids and rng.random() < 0.6:
            contact = rng.choice(contact_ids)
            deal["contact_ids"] = [contact]
            deal["primary_contact_id"] = contact
        deals.append(deal)
    return deals


def make_activities(rng: random.Random, contact_id: str, owner_id: str) -> list[dict[str, Any]]:
    """TIMELINE_ACTIVITIES activities linked to one contact, every kind, spread over the last 300 days:
    40 % notes, 20 % calls, 15 % meetings, 15 % tasks, 10 % logged emails."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    kinds = (("note", 40), ("call", 20), ("meeting", 15), ("task", 15), ("email", 10))
    items = []
    for i in range(TIMELINE_ACTIVITIES):
        kind = _weighted(rng, kinds)
        when = (now - datetime.timedelta(days=rng.randint(0, 300), seconds=rng.randint(0, 86399))).isoformat()
        item: dict[str, Any] = {"kind": kind, "links": {"contacts": [contact_id]}}
        if kind == "note":
            item["body"] = f"Note {i}: " + " ".join(rng.choices(("pricing", "follow-up", "demo", "contract",
                                                                   "renewal", "budget", "legal", "timeline"), k=24))
        elif kind in ("call", "meeting"):
            item.update(subject=f"{kind.title()} {i}", starts_at=when, duration_minutes=rng.choice((15, 30, 45, 60)),
                        outcome=rng.choice(("connected", "left voicemail", "no answer", "scheduled next step")))
        elif kind == "task":
            item.update(subject=f"Follow up {i}", owner_id=owner_id, due_at=when,
                        priority=rng.choice(("low", "normal", "high")))
            if rng.random() < 0.5:
                item["completed_at"] = when
        else:
            item.update(subject=f"Re: proposal {i}", direction=rng.choice(("inbound", "outbound")),
                        email_from="rep@bench-workspace.example.com", email_to=["buyer@example.com"], sent_at=when,
                        body="Thanks for the call - attached the revised proposal.")
        items.append(item)
    return items


def seed_crm_core(client: Http, parallel: int, wanted: list[str], company_ids: list[str],
                  contact_ids: list[str], owner_id: str) -> dict[str, Any]:
    """Deals for move_deal_stage / pipeline_board, activities for contact_timeline (through the API)."""
    out: dict[str, Any] = {}
    rng = random.Random(20240602)
    if any(s in wanted for s in DEAL_SCENARIOS):
        pipeline = default_pipeline(client)
        stages = pipeline["stages"]
        open_stages = [s for s in stages if s["kind"] == "open"]
        if len(open_stages) < 2:
            raise RuntimeError("the default pipeline needs two open stages for move_deal_stage")
        t0 = time.perf_counter()
        deals = batch_create(client, "deals", make_deals(rng, stages, company_ids, contact_ids), parallel)
        seconds = time.perf_counter() - t0
        out.update(deals=len(deals), deals_seconds=round(seconds, 2),
                   deal_records_per_second=round(len(deals) / seconds, 1))
        move_ids = [d["id"] for d in deals[:N_MOVE_DEALS]]
        FIXTURES["move_deal_stage"] = {"deal_ids": move_ids, "env": {
            "BENCH_STAGE_A": open_stages[0]["id"], "BENCH_STAGE_B": open_stages[1]["id"]}}
        FIXTURES["pipeline_board"] = {"path": PATHS["pipeline_board"].format(pipeline_id=pipeline["id"])}
        out["pipeline_id"] = pipeline["id"]
        out["move_stages"] = [open_stages[0]["name"], open_stages[1]["name"]]
    if "contact_timeline" in wanted:
        contact_id = contact_ids[0]
        t0 = time.perf_counter()
        made = batch_create(client, "activities", make_activities(rng, contact_id, owner_id), parallel)
        out.update(activities=len(made), activities_seconds=round(time.perf_counter() - t0, 2),
                   timeline_contact_id=contact_id)
        FIXTURES["contact_timeline"] = {"path": PATHS["contact_timeline"].format(contact_id=contact_id)}
    return out


def seed_bulk_deals(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """pipeline_summary_100k's fixture: a second workspace ("Bench reports", its own admin API key) whose
    default pipeline gets N_BULK_DEALS live + N_BULK_ARCHIVED archived deals, inserted straight into
    MariaDB by bench/bulk_deals.py (the app's table, Core executemany in chunks) and ANALYZEd. The main
    bench workspace's deals stay few, so the other scenarios do not depend on whether this ran."""
    t0 = time.perf_counter()
    made = json.loads(run_cli(["workspace", "create", "--name", "Bench reports", "--owner-email",
                               "owner@bench-reports.example.com"], env))
    client = Http(args.port, made["api_key"], timeout=60)
    pipeline = default_pipeline(client)
    stages = [{"id": s["id"], "kind": s["kind"]} for s in pipeline["stages"]]
    cmd = [sys.executable, str(BENCH_DIR / "bulk_deals.py"), "--workspace-id", made["workspace_id"],
           "--pipeline-id", pipeline["id"], "--stages", json.dumps(stages), "--owner-id", made["owner_user_id"],
           "--deals", str(N_BULK_DEALS), "--archived", str(N_BULK_ARCHIVED), "--chunk", str(BULK_CHUNK)]
    proc = subprocess.run(cmd, env=env, cwd=APP_DIR, capture_output=True, text=True, timeout=1200)
    match = re.search(r"^BULK_RESULT (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"bulk insert failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(match.group(1))
    path = PATHS["pipeline_summary_100k"].format(pipeline_id=pipeline["id"])
    t1 = time.perf_counter()
    status, body = client.request("GET", path)
    first_ms = (time.perf_counter() - t1) * 1000
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:500]!r}")
    counted = json.loads(body)["count"]
    if counted != N_BULK_DEALS:
        raise RuntimeError(f"the pipeline summary counts {counted} deals, not {N_BULK_DEALS}")
    FIXTURES["pipeline_summary_100k"] = {"path": path, "api_key": made["api_key"]}
    return {**result, "workspace_id": made["workspace_id"], "pipeline_id": pipeline["id"],
            "total_seconds": round(time.perf_counter() - t0, 2), "first_summary_ms": round(first_ms, 1),
            "summary_count": counted}


def db_rows(database_url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(database_url)
    conn = pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=u.database, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def settled_stage_changes(database_url: str, timeout: float = 15) -> int:
    """The number of recorded stage changes once it stops moving (requests wrk abandoned at the end of a
    run are still being served for a moment)."""
    last, deadline = -1, time.monotonic() + timeout
    while True:
        count = int(db_rows(database_url, "SELECT COUNT(*) FROM deal_stage_changes")[0][0])
        if count == last or time.monotonic() > deadline:
            return count
        last = count
        time.sleep(0.5)


def write_move_file(database_url: str, path: Path) -> None:
    """move_deal_stage's deals with the stage each is in now (read from the database before every wrk
    run: a warm-up or an earlier run has moved some of them)."""
    ids = FIXTURES["move_deal_stage"]["deal_ids"]
    current = dict(db_rows(database_url, "SELECT id, stage_id FROM deals WHERE id IN %s", (ids,)))
    missing = [i for i in ids if i not in current]
    if missing:
        raise RuntimeError(f"move_deal_stage: {len(missing)} deals not found (first {missing[0]})")
    path.write_text("".join(f"{i} {current[i]}\n" for i in ids))


# ---------------------------------------------------------------------------------------------
# CPU accounting (from /proc): where the machine's CPU went during a scenario. On a 2-core box
# the server, MariaDB, Redis and wrk share the cores, so CPU-ms per request is the figure that
# says what a request costs, and "other" shows load from processes that are not part of the run.
# ---------------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def system_busy_seconds() -> float:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0.0
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK


class CpuSample:
    def __init__(self, server: Server) -> None:
        import resource

        self.wall = time.monotonic()
        self.server_pids = [server.proc.pid, *server.worker_pids()]
        self.db_pids = pids_named("mariadbd", "mysqld")
        self.redis_pids = pids_named("redis-server")
        self.server = sum(proc_cpu_seconds(p) for p in self.server_pids)
        self.db = sum(proc_cpu_seconds(p) for p in self.db_pids)
        self.redis = sum(proc_cpu_seconds(p) for p in self.redis_pids)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # only wrk exits in between
        self.children = usage.ru_utime + usage.ru_stime
        self.system = system_busy_seconds()
        self.load1 = os.getloadavg()[0]

    def since(self, before: CpuSample, requests: int) -> dict[str, Any]:
        wall = self.wall - before.wall
        server = self.server - before.server
        db = self.db - before.db
        redis_ = self.redis - before.redis
        wrk = self.children - before.children
        system = self.system - before.system
        other = max(0.0, system - server - db - redis_ - wrk)
        cpus = os.cpu_count() or 1
        per = (lambda v: round(1000 * v / requests, 3)) if requests else (lambda v: None)
        return {
            "wall_seconds": round(wall, 2),
            "machine_busy_pct": round(100 * system / (wall * cpus), 1),
            "server_pct_of_machine": round(100 * server / (wall * cpus), 1),
            "other_pct_of_machine": round(100 * other / (wall * cpus), 1),
            "load1_before": round(before.load1, 2),
            "ms_per_request": {"server": per(server), "mariadb": per(db), "redis": per(redis_), "wrk": per(wrk)},
            "cpu_seconds": {"server": round(server, 2), "mariadb": round(db, 2), "redis": round(redis_, 2),
                            "wrk": round(wrk, 2), "other": round(other, 2), "machine": round(system, 2)},
        }


class ServerCounters:
    """Server-wide statement/command counters of MariaDB and Redis (approximate per request: other
    clients of the same servers are counted too; the 'other procs' CPU column says if there were any)."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url, self.redis_url = database_url, redis_url

    def read(self) -> dict[str, int]:
        import pymysql
        import redis
        from sqlalchemy.engine import make_url

        out: dict[str, int] = {}
        try:
            u = make_url(self.database_url)
            conn = pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                                   password=u.password or "", connect_timeout=5)
            try:
                with conn.cursor() as cur:
                    cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                                "('Questions','Com_select','Com_insert','Com_update','Com_commit','Com_rollback',"
                                "'Com_savepoint','Com_release_savepoint')")
                    for name, value in cur.fetchall():
                        out[f"db_{name.lower()}"] = int(value)
            finally:
                conn.close()
        except Exception:
            pass
        try:
            client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
            out["redis_commands"] = int(client.info("stats")["total_commands_processed"])
            client.close()
        except Exception:
            pass
        return out

    @staticmethod
    def per_request(before: dict[str, int], after: dict[str, int], requests: int) -> dict[str, float]:
        if not requests:
            return {}
        # Our own reads cost 1 question (the SHOW) and 1 Redis command (INFO): subtract them.
        own = {"db_questions": 1, "redis_commands": 1}
        return {k: round((after[k] - before[k] - own.get(k, 0)) / requests, 2) for k in after if k in before}


# ---------------------------------------------------------------------------------------------
# 4. Load: wrk
# ---------------------------------------------------------------------------------------------

def metric_counts(client: Http) -> dict[str, float]:
    """Record-cache lookups by result and Redis degradations by component, from /metrics (all workers)."""
    status, body = client.request("GET", "/metrics")
    counts: dict[str, float] = {}
    if status != 200:
        return counts
    text = body.decode()
    for m in re.finditer(r'^crm_cache_lookups_total\{result="(\w+)"\}\s+([0-9.eE+]+)$', text, re.M):
        counts[m.group(1)] = counts.get(m.group(1), 0.0) + float(m.group(2))
    for m in re.finditer(r'^crm_redis_degraded_total\{component="(\w+)"\}\s+([0-9.eE+]+)$', text, re.M):
        key = f"redis_degraded_{m.group(1)}"
        counts[key] = counts.get(key, 0.0) + float(m.group(2))
    return counts


def run_wrk(scenario: str, args: argparse.Namespace, api_key: str, ids_file: Path, duration: float) -> dict[str, Any]:
    fixture = FIXTURES.get(scenario, {})
    env = dict(os.environ)
    env["LUA_PATH"] = f"{LUA_DIR}/?.lua;;"
    env["BENCH_API_KEY"] = "" if scenario == "hello" else fixture.get("api_key", api_key)
    env["BENCH_IDS_FILE"] = str(ids_file)
    env["BENCH_BODY"] = json.dumps(SEARCH_BODY)
    env["BENCH_WRK_THREADS"] = str(args.wrk_threads)
    env.update(fixture.get("env", {}))
    if scenario == "move_deal_stage":
        settled_stage_changes(args.database_url)  # requests wrk left in flight at the end of a run finish first
        move_file = ids_file.with_name("move_deals.txt")
        write_move_file(args.database_url, move_file)
        env["BENCH_MOVE_FILE"] = str(move_file)
    path = fixture.get("path", PATHS[scenario])
    cmd = ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{max(1, round(duration))}s",
           "--timeout", "5s", "-s", str(LUA_DIR / f"{scenario}.lua"), f"http://127.0.0.1:{args.port}{path}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"^BENCH_RESULT (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed for {scenario} ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000, "p95_ms": lat["p95"] / 1000,
        "p99_ms": lat["p99"] / 1000, "max_ms": lat["max"] / 1000, "mean_ms": lat["mean"] / 1000,
        "non2xx": errors["non2xx"],
        "socket_errors": socket_errors,
        "socket_error_detail": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
        "statuses_non2xx": raw["statuses"],
        "errors": errors["non2xx"] + socket_errors,
        "wrk_stderr": proc.stderr.strip(),
    }


def run_scenario(scenario: str, args: argparse.Namespace, api_key: str, ids_file: Path,
                 client: Http, server: Server, counters: ServerCounters) -> dict[str, Any]:
    if args.warmup > 0:
        run_wrk(scenario, args, api_key, ids_file, args.warmup)  # not counted: connections, pools, caches
    before = metric_counts(client)
    log(f"scenario {scenario}: {args.duration:g} s at {args.connections} connections")
    spy = start_profile(server, scenario, args.duration - 1) if args.profile else None
    moves_before = settled_stage_changes(args.database_url) if scenario == "move_deal_stage" else 0
    counts_before = counters.read()
    cpu_before = CpuSample(server)
    result = run_wrk(scenario, args, api_key, ids_file, args.duration)
    result["cpu"] = CpuSample(server).since(cpu_before, result["requests"])
    result["per_request"] = ServerCounters.per_request(counts_before, counters.read(), result["requests"])
    if scenario == "move_deal_stage":
        # Every answered request should be a real move (a recorded stage change), not a no-op to the same
        # stage. Requests wrk left in flight at the end are still served (up to --connections more).
        result["stage_changes"] = settled_stage_changes(args.database_url) - moves_before
    if spy:
        proc, path = spy
        try:
            _, err = proc.communicate(timeout=30)
            if path.exists():
                result["profile"] = summarise_profile(path)
            else:
                log(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    after = metric_counts(client)
    degraded = {k: int(after[k] - before.get(k, 0)) for k in after if k.startswith("redis_degraded_")}
    result["redis_degraded"] = {k: v for k, v in degraded.items() if v}
    if scenario == "get_contact":
        delta = {k: int(after.get(k, 0) - before.get(k, 0)) for k in ("hit", "miss", "pending")}
        total = sum(delta.values())
        result["cache"] = {**delta, "hit_ratio": round(delta["hit"] / total, 4) if total else None}
    log(f"  {result['rps']:.0f} req/s, p95 {result['p95_ms']:.1f} ms, errors {result['errors']}")
    return result


# ---------------------------------------------------------------------------------------------
# Optional: py-spy on every granian worker during a scenario (--profile)
# ---------------------------------------------------------------------------------------------

# A sample is charged to the first of these found walking from the innermost frame outwards,
# so "pymysql" is time in the driver (packing/parsing, socket calls), "sqlalchemy" the ORM/core, etc.
PROFILE_BUCKETS = (
    ("pymysql", "pymysql/"), ("redis-py", "redis/"), ("pydantic", "pydantic"), ("sqlalchemy", "sqlalchemy/"),
    ("prometheus_client", "prometheus_client/"), ("email_validator", "email_validator/"),
    ("json", "json/"), ("logging/powertools", "logging/"), ("logging/powertools", "aws_lambda_powertools/"),
    ("chalice", "chalice/"), ("sentry", "sentry_sdk/"), ("threading/queue", "threading.py"),
    ("threading/queue", "queue.py"), ("stdlib other", "/lib/python3"),
    ("crm layers/", "layers/"), ("crm functions/", "functions/"), ("crm shared/", "shared/"), ("app.py", "app.py"),
)


def start_profile(server: Server, scenario: str, duration: float) -> tuple[subprocess.Popen[bytes], Path] | None:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists() and not shutil.which("py-spy"):
        log("--profile: py-spy is not installed (pip install py-spy); skipping")
        return None
    out = RESULTS_DIR / f"profile-{scenario}-w{server.workers}-t{server.threads}.txt"
    cmd = [str(spy if spy.exists() else "py-spy"), "record", "--pid", str(server.proc.pid), "--subprocesses",
           "--nonblocking", "--gil", "--nolineno", "--format", "raw", "--rate", "200", "--duration",
           str(max(1, int(duration))), "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # let it attach
    return proc, out


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Collapsed stacks → share of samples per library bucket, and the top functions inclusive/self."""
    buckets: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    self_time: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        bucket = "other"
        for frame in reversed(frames):
            hit = next((name for name, marker in PROFILE_BUCKETS if marker in frame), None)
            if hit:
                bucket = hit
                break
        buckets[bucket] = buckets.get(bucket, 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        self_time[frames[-1]] = self_time.get(frames[-1], 0) + count

    def pct(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])]

    skip = ("<module>", "run (threading.py)", "_bootstrap", "worker (", "serve", "__call__ (granian")
    incl = [(k, v) for k, v in pct(inclusive) if not k.startswith(skip)][:top * 2]
    return {"samples": total, "buckets_pct": pct(buckets), "inclusive_pct": incl, "self_pct": pct(self_time)[:top],
            "file": str(path.relative_to(ROOT))}


def profile_lines(name: str, prof: dict[str, Any]) -> list[str]:
    out = [f"profile {name} ({prof['samples']} samples holding the GIL, all workers; {prof['file']})"]
    out.append("  by library: " + ", ".join(f"{k} {v}%" for k, v in prof["buckets_pct"] if v >= 1))
    out.append("  top self:   " + "; ".join(f"{k} {v}%" for k, v in prof["self_pct"][:8]))
    return out


# ---------------------------------------------------------------------------------------------
# 5. Report
# ---------------------------------------------------------------------------------------------

def evaluate(results: dict[str, dict[str, Any]]) -> None:
    hello_rps = results.get("hello", {}).get("rps") or 0.0
    for name, r in results.items():
        r["ratio_to_hello"] = round(r["rps"] / hello_rps, 3) if hello_rps else None
        misses = []
        if name in TARGET_RPS and r["rps"] < TARGET_RPS[name]:
            misses.append(f"req/s<{TARGET_RPS[name]}")
        if r["p95_ms"] > TARGET_P95_MS:
            misses.append(f"p95>{TARGET_P95_MS:g}ms")
        if r["errors"]:
            misses.append("errors")
        r["target_rps"] = TARGET_RPS.get(name)
        r["pass"] = not misses
        r["misses"] = misses


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (f"{'scenario':<21} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7} "
            f"{'x hello':>7}  {'target':<31} result")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        target = (f">={r['target_rps']} r/s, " if r["target_rps"] else "") + f"p95<={TARGET_P95_MS:g}ms, 0 err"
        verdict = "pass" if r["pass"] else "MISS (" + ", ".join(r["misses"]) + ")"
        ratio = f"{r['ratio_to_hello']:.2f}" if r["ratio_to_hello"] is not None else "-"
        lines.append(f"{name:<21} {r['rps']:>8.0f} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                     f"{r['errors']:>7} {ratio:>7}  {target:<31} {verdict}")
    return "\n".join(lines)


def cpu_table(results: dict[str, dict[str, Any]]) -> str:
    head = (f"{'CPU per request':<21} {'server ms':>9} {'mariadb ms':>10} {'redis ms':>8} {'wrk ms':>7} "
            f"{'SQL stmts':>9} {'redis cmds':>10} {'machine busy':>12} {'other procs':>11} {'load1':>6}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        c = r["cpu"]
        m = c["ms_per_request"]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        q = r.get("per_request", {})
        stmts = q.get("db_questions")
        cmds = q.get("redis_commands")
        lines.append(f"{name:<21} {fmt(m['server']):>9} {fmt(m['mariadb']):>10} {fmt(m['redis']):>8} "
                     f"{fmt(m['wrk']):>7} {'-' if stmts is None else f'{stmts:.1f}':>9} "
                     f"{'-' if cmds is None else f'{cmds:.1f}':>10} "
                     f"{c['machine_busy_pct']:>11.0f}% {c['other_pct_of_machine']:>10.0f}% "
                     f"{c['load1_before']:>6.2f}")
    return "\n".join(lines)


def detail_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for name, r in results.items():
        if r["errors"]:
            out.append(f"  {name}: non-2xx {r['non2xx']} {r['statuses_non2xx']}, socket {r['socket_error_detail']}")
        if r.get("redis_degraded"):
            out.append(f"  {name}: served without Redis (crm_redis_degraded_total): {r['redis_degraded']}")
        if "stage_changes" in r:
            out.append(f"  {name}: {r['stage_changes']} stage changes recorded for {r['requests']} answered requests "
                       f"(the rest: requests still in flight when wrk stopped)")
        if "cache" in r:
            c = r["cache"]
            out.append(f"  {name}: record cache hit {c['hit']}, miss {c['miss']}, pending {c['pending']}"
                       f" (hit ratio {c['hit_ratio']})")
    return out


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the API tier (crm serve on MariaDB + Redis) with wrk.")
    p.add_argument("--duration", type=float, default=15, help="seconds per scenario (default 15)")
    p.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each scenario (default 2)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    p.add_argument("--wrk-threads", type=int, default=1,
                   help="wrk threads (default 1: one epoll loop easily drives 32 connections, and leaves "
                        "the 2 cores to the server)")
    p.add_argument("--workers", type=int, default=2, help="crm serve --workers (default 2)")
    p.add_argument("--threads", type=int, default=8, help="crm serve --threads (default 8)")
    p.add_argument("--port", type=int, default=0, help="server port on 127.0.0.1 (default: a free one)")
    p.add_argument("--database-url", default="mysql+pymysql://root@127.0.0.1:3306/crm_bench",
                   help="bench database (DROPPED and re-created)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="bench Redis db (FLUSHED)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated subset of {','.join(SCENARIOS)} (hello always runs: ratios need it)")
    p.add_argument("--seed-parallel", type=int, default=4, help="batch requests in flight while seeding")
    p.add_argument("--json-out", default=str(RESULTS_DIR / "latest.json"), help="where to write the JSON results")
    p.add_argument("--matrix", metavar="WxT,...",
                   help="seed once, then run the scenarios against a fresh server per WORKERSxTHREADS config, "
                        "e.g. 2x4,2x8,2x16,3x4,3x8,3x16 (overrides --workers/--threads)")
    p.add_argument("--search-query", help=f"the search scenario's `query` (default {SEARCH_BODY['query']!r})")
    p.add_argument("--at", metavar="REV",
                   help="measure this git commit (exported with git archive to a temp dir) instead of the "
                        "working tree; the bench code itself always comes from the working tree")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--profile", action="store_true",
                   help="run py-spy (record --subprocesses --nonblocking --gil) on the workers during each measured "
                        "scenario; summaries printed, collapsed stacks in bench/results/profile-*.txt "
                        "(sampling costs the server some CPU: figures are a little lower)")
    p.add_argument("--alongside", choices=("none", "worker", "realtime"), default="none",
                   help="run other tiers beside the API during the scenarios (bench/alongside.py): the worker "
                        "(relay + jobs), or the worker and the real-time tier with --realtime-clients clients")
    p.add_argument("--realtime-clients", type=int, default=1000, help="clients of --alongside realtime (1000)")
    p.add_argument("--hold", action="store_true",
                   help="after seeding, print the server's worker pids and keep serving until Ctrl-C "
                        "(for profiling by hand; no load is driven)")
    args = p.parse_args(argv)
    if args.alongside != "none" and args.at:
        p.error("--alongside runs the working tree's tiers: not with --at")
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def warm_cache(client: Http, ids: list[str]) -> None:
    """The first pass fills the record cache, so the measured get_contact run only hits it."""
    for rid in ids:
        status, _ = client.request("GET", f"/v1/contacts/{rid}")
        if status != 200:
            raise RuntimeError(f"warming GET /v1/contacts/{rid}: {status}")


def parse_matrix(text: str | None, args: argparse.Namespace) -> list[tuple[int, int]]:
    if not text:
        return [(args.workers, args.threads)]
    configs = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)x(\d+)\s*", part)
        if not m:
            sys.exit(f"bench: --matrix takes WORKERSxTHREADS,... (e.g. 2x4,2x8,3x8), not {part!r}")
        configs.append((int(m.group(1)), int(m.group(2))))
    return configs


def report(results: dict[str, dict[str, Any]], workers: int, threads: int, args: argparse.Namespace,
           log_path: Path) -> list[str]:
    out = [f"crm serve --workers {workers} --threads {threads}; wrk -t{args.wrk_threads} -c{args.connections}, "
           f"{args.duration:g} s per scenario (+{args.warmup:g} s warm-up, not counted); {os.cpu_count()} CPUs "
           f"shared by server, MariaDB, Redis and wrk", "", table(results), "", cpu_table(results)]
    details = detail_lines(results)
    for name, r in results.items():
        if "profile" in r:
            details += profile_lines(name, r["profile"])
    if details:
        out += ["", *details]
    server_log = log_path.read_text(errors="replace") if log_path.exists() else ""
    error_lines = [ln for ln in server_log.splitlines() if re.search(r"error|exception|traceback", ln, re.I)]
    if error_lines:
        out += ["", f"server log ({log_path.relative_to(ROOT)}) has {len(error_lines)} error line(s); first:"]
        out += ["  " + ln[:300] for ln in error_lines[:5]]
    busy_others = max(r["cpu"]["other_pct_of_machine"] for r in results.values())
    if busy_others > 10:
        out += ["", f"WARNING: processes outside this run used up to {busy_others:.0f}% of the machine during a "
                    "scenario; figures are lower than on an idle machine (see 'other procs')"]
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)")
    if args.port == 0:
        args.port = free_port()
    if args.search_query is not None:
        SEARCH_BODY["query"] = args.search_query
    wanted = [s for s in SCENARIOS if s == "hello" or s in args.scenarios.split(",")]
    configs = parse_matrix(args.matrix, args)
    RESULTS_DIR.mkdir(exist_ok=True)
    started = time.time()

    global APP_DIR
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    source = "working tree"
    if args.at:
        APP_DIR = tmp / "src"
        sha = export_revision(args.at, APP_DIR)
        source = f"commit {sha[:12]} ({args.at})"
    env = server_env(args)
    origin = imported_from(env)
    if Path(origin).resolve() != APP_DIR.resolve():
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(f"bench: the app would be imported from {origin}, not {APP_DIR}")
    log(f"measuring the {source}: {APP_DIR}")
    log(f"resetting database {args.database_url} and Redis {args.redis_url}")
    reset_database(args.database_url)
    reset_redis(args.redis_url)
    run_cli(["migrate"], env)
    provisioned = json.loads(run_cli(["workspace", "create", "--name", "Bench", "--owner-email",
                                      "owner@bench-workspace.example.com"], env))
    api_key, workspace_id = provisioned["api_key"], provisioned["workspace_id"]
    log(f"workspace {workspace_id}")

    runs: list[dict[str, Any]] = []
    lines: list[str] = []
    server: Server | None = None
    side: Any = None
    alongside_info: dict[str, Any] = {"mode": "none"}
    try:
        for n, (workers, threads) in enumerate(configs):
            log_path = RESULTS_DIR / (f"server-w{workers}-t{threads}.log" if len(configs) > 1 else "server.log")
            server = start_server(args, env, log_path, workers, threads)
            client = Http(args.port, api_key, timeout=60)
            if n == 0:
                log(f"seeding {N_COMPANIES} companies and {N_CONTACTS} contacts "
                    f"({BATCH} per request, {args.seed_parallel} in parallel)")
                seeding = seed(client, args.seed_parallel)
                contact_ids = seeding.pop("contact_ids")
                company_ids = seeding.pop("company_ids")
                log(f"seeded in {seeding['total_seconds']} s (companies {seeding['companies_seconds']} s, "
                    f"contacts {seeding['contacts_seconds']} s = {seeding['contact_records_per_second']} contacts/s)")
                core = seed_crm_core(client, args.seed_parallel, wanted, company_ids, contact_ids,
                                     provisioned["owner_user_id"])
                if core:
                    seeding["crm_core"] = core
                    log("seeded " + seeding_core_text(core))
                if "pipeline_summary_100k" in wanted:
                    log(f"bulk-inserting {N_BULK_DEALS:,} live + {N_BULK_ARCHIVED:,} archived deals into a second "
                        f"workspace's default pipeline (bench/bulk_deals.py, chunks of {BULK_CHUNK:,})")
                    seeding["bulk"] = seed_bulk_deals(args, env)
                    log("bulk " + seeding_bulk_text(seeding["bulk"]))
                get_ids = random.Random(7).sample(contact_ids, min(GET_ID_SET, len(contact_ids)))
                ids_file = tmp / "ids.txt"
                ids_file.write_text("\n".join(get_ids) + "\n")
                status, body = client.request("POST", "/v1/contacts/search", SEARCH_BODY)
                if status != 200:
                    raise RuntimeError(f"search body refused: {status} {body[:500]!r}")
                log(f"search {json.dumps(SEARCH_BODY)}: {len(json.loads(body)['data'])} rows on the first page")
                if args.alongside != "none":
                    from alongside import Alongside  # its helpers import this file as a module

                    side = Alongside(args.alongside, env, api_key, args.realtime_clients, args.database_url)
                    alongside_info = side.start()
                if args.hold:
                    warm_cache(client, get_ids)
                    (tmp / "api_key").write_text(api_key)
                    log(f"holding: server pid {server.proc.pid}, workers {server.worker_pids()}, port {args.port}, "
                        f"API key in {tmp / 'api_key'}, ids in {ids_file}; Ctrl-C to stop")
                    try:
                        while server.proc.poll() is None:
                            time.sleep(1)
                    except KeyboardInterrupt:
                        pass
                    return 0

            results: dict[str, dict[str, Any]] = {}
            counters = ServerCounters(args.database_url, args.redis_url)
            for scenario in wanted:
                if scenario == "get_contact":
                    warm_cache(client, get_ids)
                results[scenario] = run_scenario(scenario, args, api_key, ids_file, client, server, counters)
            evaluate(results)
            code = server.stop()
            server = None
            log(f"server exited with {code}")
            runs.append({"workers": workers, "threads": threads, "scenarios": results,
                         "all_pass": all(r["pass"] for r in results.values()), "server_exit_code": code})
            lines += ["", *report(results, workers, threads, args, log_path)]
    finally:
        if server is not None:
            server.stop()
        if side is not None:
            alongside_info = side.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"source: {source}")
    print(f"alongside: {json.dumps(alongside_info)}")
    print(f"seeding: {seeding['companies']} companies + {seeding['contacts']} contacts in "
          f"{seeding['total_seconds']} s ({seeding['contact_records_per_second']} contacts/s through "
          f"batch/create, {args.seed_parallel} requests in flight)")
    if "crm_core" in seeding:
        print(f"seeding: {seeding_core_text(seeding['crm_core'])}")
    if "bulk" in seeding:
        print(f"seeding: {seeding_bulk_text(seeding['bulk'])}")
    print("\n".join(lines))
    if len(runs) > 1:
        print()
        print(matrix_table(runs, wanted))
    all_pass = all(r["all_pass"] for r in runs)
    print()
    print("all targets met" if all_pass else "some targets missed")

    out = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "config": {k: v for k, v in vars(args).items() if k not in ("json_out",)},
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform, "python": sys.version.split()[0]},
        "server_env": {k: v for k, v in env.items() if k in (
            "CRM_ENV", "ACCESS_LOG", "RATE_LIMIT_WORKSPACE", "RATE_LIMIT_CREDENTIAL", "LOG_LEVEL", "CACHE_TTL_SECONDS",
            "DATABASE_URL", "REDIS_URL", "DB_POOL_SIZE")},
        "source": source,
        "alongside": alongside_info,
        "search_body": SEARCH_BODY,
        "seeding": seeding,
        "targets": {"rps": TARGET_RPS, "p95_ms": TARGET_P95_MS, "errors": 0},
        "runs": runs,
        "scenarios": runs[0]["scenarios"] if len(runs) == 1 else None,
        "all_pass": all_pass,
    }
    if args.json_out:
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        log(f"wrote {path}")
    return 1 if args.strict and not all_pass else 0


def seeding_core_text(core: dict[str, Any]) -> str:
    parts = []
    if "deals" in core:
        parts.append(f"{core['deals']} deals in the default pipeline in {core['deals_seconds']} s "
                     f"({core['deal_records_per_second']} deals/s through batch/create; move_deal_stage rotates "
                     f"over {N_MOVE_DEALS} of them, {core['move_stages'][0]!r} <-> {core['move_stages'][1]!r})")
    if "activities" in core:
        parts.append(f"{core['activities']} activities on one contact in {core['activities_seconds']} s "
                     f"(batch/create)")
    return "; ".join(parts)


def seeding_bulk_text(bulk: dict[str, Any]) -> str:
    return (f"{bulk['deals']:,} live + {bulk['archived']:,} archived deals bulk-inserted into a second workspace's "
            f"default pipeline in {bulk['total_seconds']} s (generate {bulk['generate_seconds']} s, insert "
            f"{bulk['insert_seconds']} s = {bulk['rows_per_second']:,} rows/s, ANALYZE {bulk['analyze_seconds']} s; "
            f"first summary {bulk['first_summary_ms']} ms, counts {bulk['summary_count']:,})")


def matrix_table(runs: list[dict[str, Any]], wanted: list[str]) -> str:
    """One row per server config: req/s, p95 and server CPU-ms per request for each scenario, plus the
    largest share of the machine that processes outside the run took (noise)."""
    head = f"{'workers x threads':<18}" + "".join(f" {s[:18] + ' r/s':>22} {'p95':>6} {'cpu ms':>6}" for s in wanted)
    head += f" {'other procs':>11}"
    lines = [head, "-" * len(head)]
    for run in runs:
        row = f"{str(run['workers']) + ' x ' + str(run['threads']):<18}"
        for s in wanted:
            r = run["scenarios"][s]
            cpu = r["cpu"]["ms_per_request"]["server"]
            row += f" {r['rps']:>22.0f} {r['p95_ms']:>6.1f} {cpu if cpu is not None else 0:>6.3f}"
        other = max(r["cpu"]["other_pct_of_machine"] for r in run["scenarios"].values())
        row += f" {other:>10.0f}%"
        lines.append(row)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
