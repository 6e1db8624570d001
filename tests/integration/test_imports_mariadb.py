"""Imports and exports on MariaDB: chunks that commit with their checkpoint (row lock on the import),
a concurrent re-delivery that applies no row twice, and an export paging through the search."""
from __future__ import annotations

import csv
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import app
from layers.queue.sqs import Queues
from layers.runtime.dispatch import dispatch
from layers.runtime.inline import InlineQueue
from layers.storage import files
from shared.settings import reset_settings
from tests.functional.test_imports import upload
from tests.support.api import Api


@pytest.fixture
def chunks_of_500(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("IMPORT_CHUNK_ROWS", "500")
    reset_settings()
    yield 500
    monkeypatch.delenv("IMPORT_CHUNK_ROWS")
    reset_settings()


def test_2500_rows_import_in_chunks_and_export_again_on_mariadb(
    api: Api, aws: Queues, jobs: InlineQueue, chunks_of_500: int
) -> None:
    # GIVEN 2,500 contacts in a CSV (one in 100 rows bad), imported in chunks of 500
    lines = ["Email;First Name"] + [f"p{i}@example.com;P{i}" if i % 100 else f"bad-{i};P{i}" for i in range(2_500)]
    made = upload(api, "\r\n".join(lines) + "\r\n")
    committed = api.post(f"/v1/imports/{made.json['id']}/commit",
                         {"mapping": {"Email": "email", "First Name": "first_name"}})
    assert committed.status == 202, committed.json

    # WHEN the job runs, chunk after chunk
    jobs.run()

    # THEN every row is accounted for, in five chunks
    done = api.get(f"/v1/imports/{made.json['id']}").json
    assert done["status"] == "completed"
    assert done["counts"] == {"rows_total": 2_500, "created": 2_475, "updated": 0, "rejected": 25}
    assert sum(1 for handler, _ in jobs.done if handler == "imports_run") == 5

    # AND an export of them pages through every one
    export = api.post("/v1/exports", {"object_type": "contacts", "format": "csv", "properties": ["email"]})
    jobs.run()
    assert api.get(f"/v1/exports/{export.json['id']}").json["row_count"] == 2_475
    with files.open_text(files.workspace_key(api.workspace_id, "exports", export.json["id"], "contacts.csv")) as text:
        assert len({row["email"] for row in csv.DictReader(text)}) == 2_475


def test_two_deliveries_of_one_chunk_at_once_apply_it_once_on_mariadb(
    api: Api, aws: Queues, jobs: InlineQueue, chunks_of_500: int
) -> None:
    # GIVEN a committed deals import (no natural key) and its first job message
    rows = "\n".join(f"Deal {i},{i},EUR" for i in range(1_200))
    made = upload(api, "Deal,Amount,Currency\n" + rows + "\n", object_type="deals")
    api.post(f"/v1/imports/{made.json['id']}/commit",
             {"mapping": {"Deal": "name", "Amount": "amount", "Currency": "currency"}})
    jobs.relay.run_once()
    first = next(m for m in jobs.pending if '"imports_run"' in m.body)
    jobs.pending.remove(first)

    # WHEN two workers get the same message at the same time, then the queue runs on
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda _: dispatch(app.app, first), range(2)))
    jobs.run()

    # THEN one of them imported the chunk and the other found the checkpoint moved on: no deal twice
    assert len(outcomes) == 2
    done = api.get(f"/v1/imports/{made.json['id']}").json
    assert done["counts"] == {"rows_total": 1_200, "created": 1_200, "updated": 0, "rejected": 0}
    names: list[str] = []
    cursor = None
    while True:
        page = api.get("/v1/deals?limit=200" + (f"&cursor={cursor}" if cursor else "")).json
        names += [deal["name"] for deal in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(names) == len(set(names)) == 1_200
