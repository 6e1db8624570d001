"""The webhooks' sample events, as they are and realised on a real webhook (ids swapped in)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.runtime.inline import InlineQueue
from shared.context import system_scope
from tests.functional.test_events import handler_of
from tests.functional.test_webhooks import Receiver
from tests.support.api import Api
from tiers.invoke import invoke_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"
PLACEHOLDER = "01JAAAAAAAAAAAAAAAAAAAAAAA"
SECOND = "01JBBBBBBBBBBBBBBBBBBBBBBB"

# With a real webhook's id in place of the placeholder (and, for a delivery, a real delivery or event).
REALISED = {
    "webhooks_get_by_id": 200,
    "webhooks_update_by_id": 200,
    "webhooks_delete_by_id": 204,
    "webhooks_rotate_secret_by_id": 200,
    "webhooks_deliveries_list_by_id": 200,
    "webhooks_deliveries_get_by_ids": 200,
    "webhooks_redeliver_by_id": 202,
    "webhooks_test_by_id": 202,
}


def run(name: str, api: Api, replace: dict[str, str] | None = None) -> dict[str, Any]:
    text = (EVENTS / f"{name}.json").read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    result = invoke_handler(handler_of(EVENTS / f"{name}.json"), json.loads(text), api_key=api.api_key)
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize("name", sorted(REALISED))
def test_each_sample_succeeds_on_a_real_webhook(api: Api, jobs: InlineQueue, name: str) -> None:
    # GIVEN a webhook with a delivered test ping, and an event in the event log
    receiver = Receiver()
    try:
        hook = api.post("/v1/webhooks", {"url": receiver.url, "event_types": ["webhook.test"]}).json
        delivery = api.post(f"/v1/webhooks/{hook['id']}/test").json
        api.post("/v1/contacts", {"first_name": "Ada"})
        jobs.run()
        second = delivery["id"] if "deliveries" in name else _an_event_id(api)

        # WHEN the sample runs with the real ids
        result = run(name, api, {PLACEHOLDER: hook["id"], SECOND: second})
    finally:
        receiver.close()

    # THEN it succeeds
    assert result["statusCode"] == REALISED[name], result.get("body")


def _an_event_id(api: Api) -> str:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return str(uow.session.scalars(select(OutboxEvent.id).where(
            OutboxEvent.kind == "event", OutboxEvent.sequence.is_not(None)).limit(1)).one())
