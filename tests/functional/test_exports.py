"""Exports through the API: CSV and JSON Lines, filtered, downloaded through their presigned link."""
from __future__ import annotations

import csv
import io
import json
import urllib.parse
import urllib.request
from datetime import timedelta

import boto3
import pytest
from sqlalchemy import update

import app
from functions.exports.models import DataExport
from layers.aws.clients import client
from layers.db.uow import UnitOfWork
from layers.queue.relay import Relay, sqs_publisher
from layers.queue.sqs import Queues
from layers.runtime.inline import InlineQueue
from layers.runtime.worker import Worker, dead_letters
from shared.clock import utcnow
from shared.context import system_scope
from shared.settings import get_settings
from tests.support.api import Api

VIP = [{"filters": [{"property": "tags", "operator": "EQ", "value": "vip"}]}]


@pytest.fixture
def people(api: Api) -> list[dict[str, object]]:
    bodies = [
        {"email": "ada@example.com", "first_name": "Ada", "tags": ["vip"], "job_title": "=HYPERLINK(\"x\")"},
        {"email": "alan@example.com", "first_name": "Alan", "tags": ["vip", "math"]},
        {"email": "grace@example.com", "first_name": "Grace"},
    ]
    made = [api.post("/v1/contacts", body) for body in bodies]
    assert all(reply.status == 201 for reply in made)
    return [reply.json for reply in made]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8")  # type: ignore[no-any-return]


def test_csv_export_with_a_filter_downloads_through_its_presigned_link(
    api: Api, s3_over_http: str, jobs: InlineQueue, people: list[dict[str, object]]
) -> None:
    # WHEN the VIP contacts are exported as CSV with chosen columns, and the job runs
    made = api.post("/v1/exports", {"object_type": "contacts", "format": "csv", "filter_groups": VIP,
                                    "properties": ["email", "first_name", "tags", "job_title"]})
    assert made.status == 202, made.json
    assert made.json["status"] == "queued" and made.json["download_url"] is None
    jobs.run()

    # THEN the export is completed with its row count, and its link serves the file
    done = api.get(f"/v1/exports/{made.json['id']}").json
    assert done["status"] == "completed" and done["row_count"] == 2
    rows = list(csv.DictReader(io.StringIO(fetch(done["download_url"]))))
    assert sorted(r["email"] for r in rows) == ["ada@example.com", "alan@example.com"]
    assert list(rows[0]) == ["id", "email", "first_name", "tags", "job_title"]
    alan = next(r for r in rows if r["first_name"] == "Alan")
    assert alan["tags"] in ("vip; math", "math; vip")
    ada = next(r for r in rows if r["first_name"] == "Ada")
    assert ada["job_title"].startswith("'=")  # a formula is written as text


def test_jsonl_export_of_every_property(
    api: Api, s3_over_http: str, jobs: InlineQueue, people: list[dict[str, object]]
) -> None:
    # WHEN every contact is exported as JSON Lines
    made = api.post("/v1/exports", {"object_type": "contacts", "format": "jsonl"})
    jobs.run()

    # THEN each line is the record as the API answers it
    done = api.get(f"/v1/exports/{made.json['id']}").json
    lines = [json.loads(line) for line in fetch(done["download_url"]).splitlines()]
    assert done["row_count"] == 3 and len(lines) == 3
    by_id = {line["id"]: line for line in lines}
    assert by_id[str(people[1]["id"])] == api.get(f"/v1/contacts/{people[1]['id']}").json
    assert api.get("/v1/exports").json["data"][0]["id"] == made.json["id"]
    # and the file is tagged for the bucket's 7-day lifecycle rule (exports are short-lived)
    key = urllib.parse.urlparse(done["download_url"]).path.split("/", 2)[2]
    tags = boto3.client("s3", endpoint_url=s3_over_http, region_name="us-east-1").get_object_tagging(
        Bucket=get_settings().files_bucket, Key=key)["TagSet"]
    assert tags == [{"Key": "retention", "Value": "7d"}]


def test_a_large_export_pages_through_every_record(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN more contacts than one search page
    inputs = [{"email": f"p{i}@example.com"} for i in range(450)]
    for start in range(0, 450, 100):
        assert api.post("/v1/contacts/batch/create", {"inputs": inputs[start:start + 100]}).status == 200

    # WHEN they are exported
    made = api.post("/v1/exports", {"object_type": "contacts", "format": "csv", "properties": ["email"]})
    jobs.run()

    # THEN every one is in the file, once
    from layers.storage import files

    done = api.get(f"/v1/exports/{made.json['id']}").json
    assert done["row_count"] == 450
    exported = files.workspace_key(api.workspace_id, "exports", made.json["id"], "contacts.csv")
    with files.open_text(exported) as text:
        emails = [row["email"] for row in csv.DictReader(text)]
    assert sorted(emails) == sorted(i["email"] for i in inputs)


@pytest.mark.parametrize("body", [
    {"object_type": "tickets"},
    {"object_type": "contacts", "format": "xlsx"},
    {"object_type": "contacts", "properties": ["email", "shoe_size"]},
    {"object_type": "contacts", "filter_groups": [{"filters": [{"property": "nope", "operator": "EQ", "value": 1}]}]},
])
def test_bad_exports_are_422_and_queue_nothing(api: Api, aws: Queues, jobs: InlineQueue,
                                               body: dict[str, object]) -> None:
    # WHEN an export names an unknown object, format, property or filter
    reply = api.post("/v1/exports", body)

    # THEN 422, no export exists, and no job ran
    assert reply.status == 422 and reply.header("Content-Type") == "application/problem+json", reply.json
    assert api.get("/v1/exports").json["data"] == []
    jobs.run()
    assert not [h for h, _ in jobs.done if h == "exports_run"]


def test_another_workspace_cannot_see_an_export(api: Api, other_api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN an export of one workspace
    made = api.post("/v1/exports", {"object_type": "contacts"})
    jobs.run()

    # THEN another workspace neither reads nor lists it
    assert other_api.get(f"/v1/exports/{made.json['id']}").status == 404
    assert other_api.get("/v1/exports").json["data"] == []


def test_read_only_keys_may_read_exports_but_not_start_them(api: Api, aws: Queues) -> None:
    reader = api.with_key(api.post("/v1/api-keys", {"name": "reader", "scopes": ["read"]}).json["key"])
    assert reader.post("/v1/exports", {"object_type": "contacts"}).status == 403
    assert reader.get("/v1/exports").status == 200


# ---- given-up and stalled exports ------------------------------------------------------------------------------
def test_an_export_whose_job_keeps_failing_is_given_up_and_failed_with_the_reason(
    api: Api, aws: Queues, people: list[dict[str, object]]
) -> None:
    # GIVEN an export on the jobs queue, and a files bucket that is gone (every run fails to upload)
    Relay(lambda messages: None).drain()
    made = api.post("/v1/exports", {"object_type": "contacts"}).json
    Relay(sqs_publisher(aws)).drain()
    client("s3").delete_bucket(Bucket=get_settings().files_bucket)
    worker = Worker(app.app, client("sqs"), aws, threads=1, wait_seconds=0, retry_base_seconds=0)

    # WHEN the worker receives it until it gives up (the queue allows 3 receives)
    outcomes: list[str] = []
    for _ in range(5):
        reply = client("sqs").receive_message(QueueUrl=aws.jobs_url, AttributeNames=["All"])
        outcomes += [worker.process(m) for m in reply.get("Messages", [])]

    # THEN the export is failed with why instead of staying `running`, and the job waits in the DLQ
    assert outcomes == ["retry", "retry", "dead_letter"]
    failed = api.get(f"/v1/exports/{made['id']}").json
    assert failed["status"] == "failed" and failed["finished_at"] is not None and failed["download_url"] is None
    assert failed["error"].startswith("the export could not be made: its job failed 3 times (last error: ")
    (dead,) = dead_letters(client("sqs"), aws)
    assert dead["handler"] == "exports_run" and dead["receive_count"] == 3 and dead["error"]


def test_exports_running_for_hours_are_failed_by_the_sweep(api: Api, aws: Queues, jobs: InlineQueue) -> None:
    # GIVEN two exports whose job vanished: one running for 7 hours, one for 1 hour
    exports = [api.post("/v1/exports", {"object_type": "contacts"}).json for _ in range(2)]
    jobs.relay.run_once()
    jobs.pending.clear()
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        for export, hours in zip(exports, (7, 1), strict=True):
            uow.session.execute(update(DataExport).where(DataExport.id == export["id"])
                                .values(status="running", started_at=utcnow() - timedelta(hours=hours)))
        uow.commit()

    # WHEN the sweep's schedule runs
    jobs.send(json.dumps({"handler": "exports_fail_stalled"}))
    jobs.run()

    # THEN only the one running longer than an export can take failed, saying why
    old, recent = (api.get(f"/v1/exports/{e['id']}").json for e in exports)
    assert old["status"] == "failed" and "has been running since" in old["error"]
    assert recent["status"] == "running" and recent["error"] is None
