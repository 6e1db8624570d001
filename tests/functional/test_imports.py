"""CSV imports through the API: upload, preview, commit, the chunked job, rejects, upserts, resume, cancel."""
from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

import app
from functions.imports.models import DataImport
from layers.db.uow import UnitOfWork
from layers.queue.jobs import gave_up
from layers.queue.outbox import OutboxEvent
from layers.queue.sqs import Queues
from layers.runtime.dispatch import dispatch
from layers.runtime.inline import InlineQueue
from shared.clock import use_monotonic, utcnow
from shared.context import system_scope
from shared.settings import reset_settings
from tests.support.api import Api, Reply, call_app

BOUNDARY = "crm-test-boundary"
CONTACTS_CSV = (
    "First Name,Last Name,E-mail,Job Title,Tags\r\n"
    "Ada,Lovelace,ada@example.com,Analyst,vip;math\r\n"
    "Grace,Hopper,not-an-email,Admiral,\r\n"
    '"Alan","Turing","alan@example.com","Codebreaker, ""Hut 8""",\r\n'
    ",,,,\r\n"
    ',,,"nobody",\r\n'
    'Katherine,Johnson,katherine@example.com,"Line one\nline two",space\r\n'
)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("IMPORT_CHUNK_ROWS", "2")
    reset_settings()
    yield 2
    monkeypatch.delenv("IMPORT_CHUNK_ROWS")
    reset_settings()


def upload(api: Api, content: str | bytes, *, object_type: str = "contacts", name: str = "people.csv") -> Reply:
    text = content.decode("latin-1") if isinstance(content, bytes) else content
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"object_type\"\r\n\r\n{object_type}\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n{text}\r\n--{BOUNDARY}--\r\n")
    return api.post("/v1/imports", raw=body, headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


def imported(api: Api, content: str, mapping: dict[str, Any], jobs: InlineQueue, **kwargs: Any) -> dict[str, Any]:
    made = upload(api, content, **kwargs)
    assert made.status == 201, made.json
    committed = api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": mapping})
    assert committed.status == 202, committed.json
    jobs.run()
    return api.get(f"/v1/imports/{made.json['id']}").json  # type: ignore[no-any-return]


def job_rows(api: Api) -> int:
    with UnitOfWork(unscoped=True) as uow:
        rows = uow.session.scalars(select(OutboxEvent).where(
            OutboxEvent.workspace_id == api.workspace_id, OutboxEvent.kind == "job"))
        return len(list(rows))


def test_upload_preview_commit_and_run_import_good_rows_and_reject_bad_ones(
    api: Api, s3_over_http: str, jobs: InlineQueue
) -> None:
    # GIVEN a CSV uploaded as multipart/form-data
    made = upload(api, CONTACTS_CSV)
    assert made.status == 201, made.json
    assert made.json["status"] == "uploaded" and made.json["header"][2] == "E-mail"
    import_id = made.json["id"]

    # WHEN it is previewed with the suggested mapping
    preview = api.get(f"/v1/imports/{import_id}/preview")

    # THEN the header names map to properties, and the bad rows say what the API would refuse
    assert preview.status == 200, preview.json
    assert preview.json["suggested_mapping"] == {"First Name": "first_name", "Last Name": "last_name",
                                                 "E-mail": "email", "Job Title": "job_title", "Tags": "tags"}
    rows = {row["row_number"]: row for row in preview.json["rows"]}
    assert sorted(rows) == [1, 2, 3, 5, 6]  # row 4 is blank
    assert rows[1]["values"] == {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                                 "job_title": "Analyst", "tags": ["vip", "math"]}
    assert rows[1]["errors"] == [] and rows[3]["errors"] == [] and rows[6]["errors"] == []
    assert [e["field"] for e in rows[2]["errors"]] == ["email"]
    assert rows[5]["errors"]  # no email and no name
    assert rows[6]["values"]["job_title"] == "Line one\nline two"
    assert preview.json["import"]["status"] == "previewed"

    # WHEN it is committed and the job runs
    committed = api.post(f"/v1/imports/{import_id}/commit", {"mapping": preview.json["suggested_mapping"]})
    assert committed.status == 202, committed.json
    assert committed.json["status"] == "queued"
    jobs.run()

    # THEN the counts are right and the good rows are contacts, as the API shows them
    done = api.get(f"/v1/imports/{import_id}").json
    assert done["status"] == "completed" and done["progress"] == 1.0
    assert done["counts"] == {"rows_total": 5, "created": 3, "updated": 0, "rejected": 2}
    emails = {c["email"] for c in api.get("/v1/contacts?limit=200").json["data"]}
    assert emails == {"ada@example.com", "alan@example.com", "katherine@example.com"}
    alan = next(c for c in api.get("/v1/contacts?limit=200").json["data"] if c["email"] == "alan@example.com")
    assert alan["job_title"] == 'Codebreaker, "Hut 8"'

    # AND the rejected rows download through the presigned URL: original columns + the reason
    rejects = list(csv.reader(io.StringIO(fetch(done["rejects_url"]).decode("utf-8"))))
    assert rejects[0] == ["First Name", "Last Name", "E-mail", "Job Title", "Tags", "error"]
    assert [r[:5] for r in rejects[1:]] == [["Grace", "Hopper", "not-an-email", "Admiral", ""],
                                            ["", "", "", "nobody", ""]]
    assert "email" in rejects[1][5] and rejects[2][5]


def test_import_updates_existing_contacts_matched_by_email(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN a contact made through the API
    existing = api.post("/v1/contacts", {"email": "ada@example.com", "first_name": "Ada", "phone": "+44 20 1234"})
    assert existing.status == 201, existing.json

    # WHEN a CSV with the same email (another case) and a new title is imported
    done = imported(api, "Email Address,Position\nADA@example.com,Countess\nnew@example.com,Intern\n",
                    {"Email Address": "email", "Position": "job_title"}, jobs)

    # THEN that contact is updated (blank columns keep their values) and the other one created
    assert done["counts"] == {"rows_total": 2, "created": 1, "updated": 1, "rejected": 0}
    ada = api.get(f"/v1/contacts/{existing.json['id']}").json
    assert ada["job_title"] == "Countess" and ada["phone"] == existing.json["phone"] and ada["first_name"] == "Ada"
    assert done["rejects_url"] is None


def test_companies_upsert_on_domain_and_custom_fields_are_mappable(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN a company and a custom field
    from tests.support.custom_fields import define

    define(api, "companies", "tier", "single_select", options=["gold", "silver"])
    api.post("/v1/companies", {"name": "Acme", "domain": "acme.com"})

    # WHEN companies are imported with a custom field column, semicolon-delimited with a BOM
    content = "\ufeffName;Website;Employees;Tier\nAcme Corp;https://www.acme.com/;120;Gold\nGlobex;globex.com;x;silver\n"
    done = imported(api, content, {"Name": "name", "Website": "domain", "Employees": "employee_count",
                                   "Tier": "custom_fields.tier"}, jobs, object_type="companies")

    # THEN Acme is updated through its domain, and the bad number is rejected
    assert done["counts"] == {"rows_total": 2, "created": 0, "updated": 1, "rejected": 1}
    acme = api.get("/v1/companies?limit=10").json["data"][0]
    assert acme["name"] == "Acme Corp" and acme["employee_count"] == 120 and acme["custom_fields"] == {"tier": "gold"}


def test_a_redelivered_chunk_applies_no_row_twice(api: Api, aws: Queues, jobs: InlineQueue,
                                                  small_chunks: int) -> None:
    # GIVEN a committed deals import (deals have no natural key) run in chunks of two rows
    made = upload(api, "Deal,Amount,Currency\nA,10,EUR\nB,20,EUR\nC,30,EUR\nD,40,EUR\nE,50,EUR\n",
                  object_type="deals")
    mapping = {"Deal": "name", "Amount": "amount", "Currency": "currency"}
    committed = api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": mapping})
    assert committed.status == 202, committed.json
    jobs.relay.run_once()
    first = next(m for m in jobs.pending if '"imports_run"' in m.body)

    # WHEN the first chunk's message runs, then is delivered again (its worker "crashed" before deleting it)
    dispatch(app.app, first)
    after_first = api.get(f"/v1/imports/{made.json['id']}").json
    dispatch(app.app, first)
    jobs.run()

    # THEN the first run committed two rows with the checkpoint, the second did nothing, and the rest followed
    assert after_first["status"] == "running" and after_first["counts"]["created"] == 2
    assert 0 < after_first["progress"] < 1
    done = api.get(f"/v1/imports/{made.json['id']}").json
    assert done["status"] == "completed" and done["counts"]["created"] == 5
    names = sorted(d["name"] for d in api.get("/v1/deals?limit=200").json["data"])
    assert names == ["A", "B", "C", "D", "E"]
    assert sum(1 for handler, _ in jobs.done if handler == "imports_run") >= 3


def test_many_rows_import_in_chunks(api: Api, aws: Queues, jobs: InlineQueue,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 2,500 rows (one in 100 bad), and chunks of 500 rows
    monkeypatch.setenv("IMPORT_CHUNK_ROWS", "500")
    reset_settings()
    lines = ["email,first_name"] + [
        f"person{i}@example.com,P{i}" if i % 100 else f"bad-{i},P{i}" for i in range(1, 2_501)]
    try:
        # WHEN it is imported
        done = imported(api, "\n".join(lines) + "\n", {"email": "email", "first_name": "first_name"}, jobs)
    finally:
        monkeypatch.delenv("IMPORT_CHUNK_ROWS")
        reset_settings()

    # THEN every row is accounted for, over several chunks
    assert done["counts"] == {"rows_total": 2_500, "created": 2_475, "updated": 0, "rejected": 25}
    assert sum(1 for handler, _ in jobs.done if handler == "imports_run") == 5


class SteppingClock:
    """A monotonic clock that moves `step` seconds each time it is read: the import reads it once to set
    a chunk's deadline and once after each row, so every row "takes" `step` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1_000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def slow_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[SteppingClock]:
    """Chunks of at most 10 s and 1,000 rows, on a clock where each row takes 4 s."""
    clock = SteppingClock(step=4.0)
    monkeypatch.setenv("IMPORT_CHUNK_SECONDS", "10")
    reset_settings()
    use_monotonic(clock)
    yield clock
    use_monotonic(None)
    monkeypatch.delenv("IMPORT_CHUNK_SECONDS")
    reset_settings()


def test_a_chunk_ends_when_its_time_budget_is_spent(api: Api, aws: Queues, jobs: InlineQueue,
                                                    slow_rows: SteppingClock) -> None:
    # GIVEN 7 rows, each taking 4 s of a 10 s chunk budget (far under the 1,000-row limit)
    lines = ["email"] + [f"slow{i}@example.com" for i in range(7)]

    # WHEN they are imported
    done = imported(api, "\n".join(lines) + "\n", {"email": "email"}, jobs)

    # THEN each chunk stopped at the row that spent its budget (rows at 4, 8, 12 s: three a chunk), and
    # the continuations imported the rest: 3 + 3 + 1 rows in three jobs, every row once
    assert done["status"] == "completed"
    assert done["counts"] == {"rows_total": 7, "created": 7, "updated": 0, "rejected": 0}
    assert sum(1 for handler, _ in jobs.done if handler == "imports_run") == 3


def test_presigned_upload_then_preview_and_commit(api: Api, s3_over_http: str, jobs: InlineQueue) -> None:
    # GIVEN an import made without a file: it answers a presigned PUT URL
    made = api.post("/v1/imports", {"object_type": "contacts"})
    assert made.status == 201, made.json
    assert made.json["status"] == "awaiting_upload" and made.json["upload_url"]

    # WHEN committing before the upload THEN 409, and no job is written
    early = api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": {"email": "email"}})
    assert early.status == 409 and early.header("Content-Type") == "application/problem+json"
    assert job_rows(api) == 0

    # WHEN the file is PUT to the URL, then previewed (POST, with a mapping) and committed
    put = urllib.request.Request(made.json["upload_url"], data=b"email\nzed@example.com\n", method="PUT",
                                 headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(put, timeout=10) as response:
        assert response.status == 200
    preview = api.post(f"/v1/imports/{made.json['id']}/preview", {"mapping": {"email": "email"}})
    assert preview.status == 200, preview.json
    committed = api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": {"email": "email"}})
    assert committed.status == 202, committed.json
    jobs.run()

    # THEN the row is imported
    assert api.get(f"/v1/imports/{made.json['id']}").json["counts"]["created"] == 1


def test_an_object_in_the_workspace_prefix_can_be_imported(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN a CSV already in the bucket under the workspace's prefix
    from layers.storage import files

    key = files.workspace_key(api.workspace_id, "uploads", "list.csv")
    files.put_bytes(key, b"email\r\nkey@example.com\r\n")

    # WHEN an import names it
    made = api.post("/v1/imports", {"object_type": "contacts", "source_key": key})
    assert made.status == 201, made.json
    committed = api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": {"email": "email"}})
    jobs.run()

    # THEN it is imported
    assert committed.status == 202
    assert api.get(f"/v1/imports/{made.json['id']}").json["counts"]["created"] == 1
    assert api.get("/v1/imports").json["data"][0]["file_name"] == "list.csv"


@pytest.mark.parametrize(("content", "status"), [
    ("", 422),
    ("email\n", 422),  # a header and no rows
    (b"PK\x03\x04\x00\x00binary", 422),
])
def test_files_that_are_not_csv_are_refused_and_nothing_is_stored(
    api: Api, aws: Queues, content: str | bytes, status: int
) -> None:
    # WHEN an empty, header-only, binary or non-UTF-8 file is uploaded
    reply = upload(api, content)

    # THEN a problem, and no import exists
    assert reply.status == status and reply.header("Content-Type") == "application/problem+json", reply.json
    assert api.get("/v1/imports").json["data"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"object_type": "tickets"}, "object_type"),
    ({"object_type": "contacts", "source_key": "someone-else/imports/x.csv"}, "source_key"),
])
def test_bad_create_requests_are_422(api: Api, aws: Queues, body: dict[str, Any], field: str) -> None:
    # WHEN an import names an unknown object or a key outside the workspace's prefix
    reply = api.post("/v1/imports", body)

    # THEN 422 naming the field, and nothing is written
    assert reply.status == 422 and reply.json["errors"][0]["field"] == field
    assert api.get("/v1/imports").json["data"] == []


def test_a_missing_or_non_utf8_source_object_is_422(api: Api, aws: Queues) -> None:
    # GIVEN a Latin-1 file in the workspace's prefix
    from layers.storage import files

    latin = files.workspace_key(api.workspace_id, "uploads", "latin.csv")
    files.put_bytes(latin, b"email,name\nx@example.com,Jos\xe9\n")

    # WHEN imports name it, or a key with no object
    missing = api.post("/v1/imports", {"object_type": "contacts", "source_key": f"{api.workspace_id}/nope.csv"})
    not_utf8 = api.post("/v1/imports", {"object_type": "contacts", "source_key": latin})

    # THEN 422 each, and no import exists
    assert missing.status == 422 and missing.json["errors"][0]["code"] == "missing"
    assert not_utf8.status == 422 and not_utf8.json["errors"][0]["code"] == "not_csv"
    assert api.get("/v1/imports").json["data"] == []


@pytest.mark.parametrize(("mapping", "code"), [
    ({"E-mail": "email", "First Name": "favourite_colour"}, "unknown"),
    ({"First Name": "first_name"}, "missing"),  # no email: nothing to match contacts on
    ({"E-mail": "email", "Nope": "last_name"}, "unknown"),
    ({"E-mail": "email", "First Name": "custom_fields.undefined"}, "unknown"),
])
def test_a_refused_commit_writes_nothing(api: Api, aws: Queues, mapping: dict[str, str], code: str) -> None:
    # GIVEN an uploaded import
    made = upload(api, CONTACTS_CSV)

    # WHEN it is committed with a mapping naming an unknown property or column, or without the key column
    reply = api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": mapping})

    # THEN 422, the import is not queued, and no job row exists
    assert reply.status == 422 and reply.json["errors"][0]["code"] == code, reply.json
    assert api.get(f"/v1/imports/{made.json['id']}").json["status"] == "uploaded"
    assert job_rows(api) == 0


def test_a_bad_preview_mapping_is_422(api: Api, aws: Queues) -> None:
    made = upload(api, CONTACTS_CSV)
    assert api.get(f"/v1/imports/{made.json['id']}/preview?mapping=not-json").status == 422
    assert api.post(f"/v1/imports/{made.json['id']}/preview", {"mapping": {"E-mail": "nope"}}).status == 422


def test_cancel_stops_an_import_between_chunks(api: Api, aws: Queues, jobs: InlineQueue, small_chunks: int) -> None:
    # GIVEN a committed import whose first chunk ran
    made = upload(api, "email\na@x.com\nb@x.com\nc@x.com\nd@x.com\n")
    api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": {"email": "email"}})
    jobs.relay.run_once()
    first = next(m for m in jobs.pending if '"imports_run"' in m.body)
    jobs.pending.remove(first)
    dispatch(app.app, first)

    # WHEN it is cancelled, and the queue runs on
    cancelled = api.post(f"/v1/imports/{made.json['id']}/cancel")
    jobs.run()

    # THEN it stays cancelled with the rows of the chunk that ran; cancelling again is a conflict
    assert cancelled.status == 200 and cancelled.json["status"] == "cancelled"
    done = api.get(f"/v1/imports/{made.json['id']}").json
    assert done["status"] == "cancelled" and done["counts"]["created"] == 2
    assert api.post(f"/v1/imports/{made.json['id']}/cancel").status == 409
    assert api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": {"email": "email"}}).status == 409


def test_another_workspace_cannot_see_or_touch_an_import(api: Api, other_api: Api, aws: Queues) -> None:
    # GIVEN an import of one workspace
    made = upload(api, CONTACTS_CSV)
    path = f"/v1/imports/{made.json['id']}"

    # WHEN another workspace reads, previews, commits or cancels it THEN 404 each time
    assert other_api.get(path).status == 404
    assert other_api.get(f"{path}/preview").status == 404
    assert other_api.post(f"{path}/commit", {"mapping": {"E-mail": "email"}}).status == 404
    assert other_api.post(f"{path}/cancel").status == 404
    assert other_api.get("/v1/imports").json["data"] == []
    # AND it cannot import the first workspace's file by naming its key
    stolen = other_api.post("/v1/imports", {"object_type": "contacts", "source_key": made.json["source_key"]})
    assert stolen.status == 422


def test_read_only_keys_may_read_imports_but_not_start_them(api: Api, aws: Queues) -> None:
    # GIVEN a read-only key
    key = api.post("/v1/api-keys", {"name": "reader", "scopes": ["read"]}).json
    reader = api.with_key(key["key"])
    made = upload(api, CONTACTS_CSV)

    # THEN it may list and read, but not create, commit or cancel
    assert reader.get(f"/v1/imports/{made.json['id']}").status == 200
    assert upload(reader, CONTACTS_CSV).status == 403
    assert reader.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": {"E-mail": "email"}}).status == 403
    assert reader.post(f"/v1/imports/{made.json['id']}/cancel").status == 403


def test_a_non_utf8_upload_is_422_and_a_bare_csv_body_is_415(api: Api, aws: Queues) -> None:
    # GIVEN a Latin-1 file in a multipart body (raw bytes), and a CSV sent as the whole body
    latin = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"object_type\"\r\n\r\ncontacts\r\n"
             f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n"
             ).encode() + b"email,name\nx@example.com,Jos\xe9\n" + f"\r\n--{BOUNDARY}--\r\n".encode()
    auth = {"Authorization": f"Bearer {api.api_key}"}

    # WHEN they are posted
    not_utf8 = call_app(app.app, "POST", "/v1/imports", body=latin, headers={
        **auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    bare = call_app(app.app, "POST", "/v1/imports", body=b"email\nx@example.com\n",
                    headers={**auth, "Content-Type": "text/csv"})

    # THEN 422 and 415 problems, and no import exists
    assert not_utf8.status == 422 and b"UTF-8" in not_utf8.raw
    assert bare.status == 415
    assert api.get("/v1/imports").json["data"] == []


# ---- the bulk lane, given-up and stalled imports ---------------------------------------------------------------
def test_an_import_and_what_its_rows_cause_go_by_the_bulk_lane(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN a webhook on new contacts (the receiver is gone: each delivery fails and retries, still bulk work)
    hook = api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/gone", "event_types": ["contact.created"]})
    assert hook.status == 201, hook.raw

    # WHEN contacts are imported
    done = imported(api, "email\na@example.com\nb@example.com\n", {"email": "email"}, jobs)

    # THEN the chunk, the fan-out of each row's event and each delivery ran in the bulk lane
    assert done["status"] == "completed"
    lanes = {(handler, lane) for handler, lane in jobs.ran_lanes}
    assert lanes == {("imports_run", "bulk"), ("webhooks_fanout", "bulk"), ("webhooks_deliver", "bulk")}
    with UnitOfWork(unscoped=True) as uow:
        event_lanes = set(uow.session.scalars(select(OutboxEvent.lane).where(
            OutboxEvent.workspace_id == api.workspace_id, OutboxEvent.event_type == "contact.created")))
    assert event_lanes == {"bulk"}


def _committed(api: Api, content: str, mapping: dict[str, Any]) -> str:
    made = upload(api, content)
    assert api.post(f"/v1/imports/{made.json['id']}/commit", {"mapping": mapping}).status == 202
    return str(made.json["id"])


def test_an_import_whose_job_is_given_up_fails_with_the_reason(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN a committed import, its first chunk's job on the queue
    import_id = _committed(api, "email\na@example.com\n", {"email": "email"})
    jobs.relay.run_once()
    (job,) = [m for m in jobs.pending if '"imports_run"' in m.body]
    stale = job.body.replace('"position":0', '"position":7')

    # WHEN the worker gives up on a stale copy of another chunk's job, then on this one
    gave_up(stale, "failed 5 times (last error: OperationalError)")
    still_queued = api.get(f"/v1/imports/{import_id}").json["status"]
    gave_up(job.body, "failed 5 times (last error: OperationalError)")

    # THEN the stale copy changed nothing, and the import failed saying why
    failed = api.get(f"/v1/imports/{import_id}").json
    assert still_queued == "queued"
    assert failed["status"] == "failed" and failed["finished_at"] is not None
    assert failed["error"] == "the import stopped after 0 rows: its job failed 5 times (last error: OperationalError)"


def test_imports_whose_job_is_gone_are_failed_by_the_sweep(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN four imports: running with no chunk for 2 hours, running with one 10 minutes ago, queued for 2 days,
    # queued for 2 hours
    ids = [_committed(api, "email\na@example.com\n", {"email": "email"}) for _ in range(4)]
    jobs.relay.run_once()
    jobs.pending.clear()  # their jobs are gone
    now = utcnow()
    ages = {ids[0]: ("running", timedelta(hours=2)), ids[1]: ("running", timedelta(minutes=10)),
            ids[2]: ("queued", timedelta(days=2)), ids[3]: ("queued", timedelta(hours=2))}
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        for import_id, (status, age) in ages.items():
            uow.session.execute(update(DataImport).where(DataImport.id == import_id)
                                .values(status=status, updated_at=now - age))
        uow.commit()

    # WHEN the sweep's schedule runs
    jobs.send(json.dumps({"handler": "imports_fail_stalled"}))
    jobs.run()

    # THEN the two whose job is surely gone failed, saying so; the others are left as they were
    statuses = {i: api.get(f"/v1/imports/{i}").json for i in ids}
    assert [statuses[i]["status"] for i in ids] == ["failed", "running", "failed", "queued"]
    assert "made no progress since" in statuses[ids[0]]["error"]
    assert statuses[ids[1]]["error"] is None
