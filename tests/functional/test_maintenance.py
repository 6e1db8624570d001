"""Maintenance schedules (functions/maintenance): the purge of long-archived records, and expiry."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import fakeredis
from sqlalchemy import select, update

from functions.activities.models import Activity
from functions.associations.models import Association
from functions.companies.models import Company
from functions.contacts.models import Contact
from functions.deals.models import Deal, DealStageChange
from functions.maintenance.service import expire_stale_entries, purge_archived
from layers.db import idempotency
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent, emit
from layers.queue.receipts import JobReceipt
from layers.records.history import FieldHistory
from layers.runtime.inline import InlineQueue
from shared.clock import utcnow
from shared.context import system_scope
from shared.ids import new_id
from shared.settings import get_settings
from tests.support.api import Api

MODELS: dict[str, Any] = {"contacts": Contact, "companies": Company, "deals": Deal, "activities": Activity}


def _created(api: Api, object_type: str, body: dict[str, Any]) -> str:
    reply = api.post(f"/v1/{object_type}", body)
    assert reply.status == 201, reply.raw
    return str(reply.json["id"])


def _archived(api: Api, object_type: str, record_id: str, days_ago: float) -> None:
    """Archive through the API, then (test helper) move the archive time back as if `days_ago` passed."""
    assert api.delete(f"/v1/{object_type}/{record_id}").status in (200, 204)
    model = MODELS[object_type]
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(model).where(model.id == record_id)
                            .values(archived_at=utcnow() - timedelta(days=days_ago))
                            .execution_options(synchronize_session=False))
        uow.commit()


def _ids(api: Api, model: Any) -> set[str]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return set(uow.session.scalars(select(model.id)))


def _linked(api: Api) -> set[frozenset[str]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return {frozenset((row.from_id, row.to_id)) for row in uow.session.scalars(select(Association))}


def _history_of(api: Api, record_id: str) -> int:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return len(list(uow.session.scalars(select(FieldHistory.id).where(FieldHistory.record_id == record_id))))


# ---- the purge -------------------------------------------------------------------------------------------
def test_records_archived_over_90_days_ago_are_purged_and_their_history_kept(api: Api, jobs: InlineQueue) -> None:
    # GIVEN live records, records archived 91 days ago and records archived 89 days ago, linked together
    live_company = _created(api, "companies", {"name": "Live"})
    old_company, new_company = _created(api, "companies", {"name": "Old"}), _created(api, "companies", {"name": "New"})
    live_contact = _created(api, "contacts", {"email": "live@example.com", "company_id": live_company})
    old_contact = _created(api, "contacts", {"email": "old@example.com", "company_id": old_company})
    new_contact = _created(api, "contacts", {"email": "new@example.com"})
    live_deal = _created(api, "deals", {"name": "Live", "contact_ids": [live_contact]})
    old_deal = _created(api, "deals", {"name": "Old", "contact_ids": [live_contact, old_contact]})
    old_note = _created(api, "activities", {"kind": "note", "body": "old", "links": {"deals": [live_deal]}})
    new_note = _created(api, "activities", {"kind": "note", "body": "new", "links": {"deals": [live_deal]}})
    for object_type, record_id in (("activities", old_note), ("deals", old_deal), ("contacts", old_contact),
                                   ("companies", old_company)):
        _archived(api, object_type, record_id, days_ago=91)
    for object_type, record_id in (("activities", new_note), ("contacts", new_contact), ("companies", new_company)):
        _archived(api, object_type, record_id, days_ago=89)
    old_ids = (old_note, old_deal, old_contact, old_company)
    history_before = {record_id: _history_of(api, record_id) for record_id in old_ids}

    # WHEN the daily schedule runs, twice
    for _ in range(2):
        jobs.send(json.dumps({"handler": "maintenance_purge_archived"}))
        jobs.run()

    # THEN the old ones are gone, with their links and stage changes; the rest stay; history stays
    assert _ids(api, Company) == {live_company, new_company}
    assert _ids(api, Contact) == {live_contact, new_contact}
    assert _ids(api, Deal) == {live_deal}
    assert _ids(api, Activity) == {new_note}
    assert _linked(api) == {frozenset((live_deal, live_contact)), frozenset((new_note, live_deal))}
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        assert list(uow.session.scalars(select(DealStageChange.id).where(DealStageChange.deal_id == old_deal))) == []
    assert all(history_before[record_id] > 0 and _history_of(api, record_id) == history_before[record_id]
               for record_id in old_ids)
    assert ("maintenance_purge_archived", None) in jobs.done


def test_the_live_ends_of_purged_links_read_as_before(api: Api) -> None:
    # GIVEN a live deal linked to a contact archived 91 days ago
    contact = _created(api, "contacts", {"email": "gone@example.com"})
    deal = _created(api, "deals", {"name": "Stays", "contact_ids": [contact]})
    _archived(api, "contacts", contact, days_ago=91)
    before = api.get(f"/v1/deals/{deal}")

    # WHEN the purge runs
    purge_archived(now=utcnow())

    # THEN the deal reads the same (archived ends were already hidden), at the same version
    after = api.get(f"/v1/deals/{deal}")
    assert after.status == 200 and after.json == before.json and after.header("ETag") == before.header("ETag")
    assert api.get(f"/v1/contacts/{contact}").status == 404


def test_the_purge_works_in_batches_until_nothing_is_left(api: Api) -> None:
    # GIVEN five contacts archived 100 days ago
    contacts = [_created(api, "contacts", {"email": f"batch{i}@example.com"}) for i in range(5)]
    for contact in contacts:
        _archived(api, "contacts", contact, days_ago=100)

    # WHEN the purge runs two at a time
    counts = purge_archived(now=utcnow(), batch_size=2)

    # THEN all five went, in three transactions
    assert _ids(api, Contact) == set()
    assert counts["contacts"] == 5 and counts["batches"] == 3


def test_the_purge_covers_every_workspace_and_spares_restored_records(api: Api, other_api: Api) -> None:
    # GIVEN a contact archived 91 days ago in each of two workspaces, and a restored one in the second
    mine = _created(api, "contacts", {"email": "a@example.com"})
    theirs = _created(other_api, "contacts", {"first_name": "B"})
    restored = _created(other_api, "contacts", {"email": "back@example.com"})
    for who, contact in ((api, mine), (other_api, theirs), (other_api, restored)):
        _archived(who, "contacts", contact, days_ago=91)
    assert other_api.post(f"/v1/contacts/{restored}/restore").status == 200

    # WHEN the purge runs
    purge_archived(now=utcnow())

    # THEN both archived ones went, and the restored one stayed
    assert _ids(api, Contact) == set() and _ids(other_api, Contact) == {restored}


# ---- expiry ----------------------------------------------------------------------------------------------
def test_expiring_redis_keys_without_a_ttl_get_theirs_back(fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN idempotency and session keys without a TTL, ones with a TTL, and an unrelated persistent key
    fake_redis.set("idem:ws1:no-ttl", "{}")
    fake_redis.set("idem:ws1:running", "{}", ex=120)
    fake_redis.set("sess:abc", "{}")
    fake_redis.set("unrelated:persistent", "3")
    settings = get_settings()

    # WHEN the hourly expiry runs twice
    first = expire_stale_entries(now=utcnow())
    second = expire_stale_entries(now=utcnow())

    # THEN the TTL-less ones got the configured TTL, once; the others are untouched
    assert (first["ttl_restored_idem"], first["ttl_restored_sess"]) == (1, 1)
    assert (second["ttl_restored_idem"], second["ttl_restored_sess"]) == (0, 0)
    assert settings.idempotency_ttl_seconds - 5 < fake_redis.ttl("idem:ws1:no-ttl") <= settings.idempotency_ttl_seconds
    assert settings.session_ttl_seconds - 5 < fake_redis.ttl("sess:abc") <= settings.session_ttl_seconds
    assert 0 < fake_redis.ttl("idem:ws1:running") <= 120
    assert fake_redis.ttl("unrelated:persistent") == -1


def test_old_published_events_and_old_receipts_are_deleted(api: Api) -> None:
    # GIVEN events published 36 and 20 days ago, one never published from 40 days ago, and job receipts
    # from 16 and 1 days ago
    now = utcnow()
    ages = {"old": (36, True), "recent": (20, True), "unpublished": (40, False)}
    events: dict[str, str] = {}
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        for name, (days, published) in ages.items():
            row = emit(uow, event_type="test.aged", object_type="contacts", record_id=new_id(), data={})
            row.occurred_at = now - timedelta(days=days)
            row.published_at = row.occurred_at if published else None
            events[name] = row.id
        uow.commit()
    receipts = {"old": f"test:{new_id()}", "recent": f"test:{new_id()}"}
    with UnitOfWork(unscoped=True) as uow:
        uow.session.add(JobReceipt(key=receipts["old"], received_at=now - timedelta(days=16)))
        uow.session.add(JobReceipt(key=receipts["recent"], received_at=now - timedelta(days=1)))
        uow.commit()

    # WHEN the hourly expiry runs
    counts = expire_stale_entries(now=now)

    # THEN only the event past the 35-day retention and the receipt past 15 days are gone
    with UnitOfWork(unscoped=True) as uow:
        left = set(uow.session.scalars(select(OutboxEvent.id).where(OutboxEvent.id.in_(events.values()))))
        kept = set(uow.session.scalars(select(JobReceipt.key).where(JobReceipt.key.in_(receipts.values()))))
    assert left == {events["recent"], events["unpublished"]}
    assert kept == {receipts["recent"]}
    assert counts["outbox_events"] >= 1 and counts["job_receipts"] >= 1


def test_the_cache_epoch_ledger_is_purged_but_keeps_its_newest_row() -> None:
    # GIVEN ledger rows from two days ago (the newest among them too) and one from now
    from layers.cache.invalidations import CacheInvalidation, current, use_tracker
    from layers.db.engine import get_engine

    now = utcnow()
    with get_engine().begin() as connection:
        old = [connection.execute(CacheInvalidation.__table__.insert().values(created_at=now - timedelta(days=2)))
               .inserted_primary_key[0] for _ in range(2)]
    use_tracker(None)
    epoch_before = current()

    # WHEN the hourly expiry runs
    counts = expire_stale_entries(now=now)

    # THEN the older old row went, but not the newest: the epoch every process reads never moves back
    with get_engine().connect() as connection:
        left = set(connection.execute(select(CacheInvalidation.id)).scalars())
    assert counts["cache_invalidations"] >= 1
    assert old[0] not in left and old[1] in left
    use_tracker(None)
    assert current() == epoch_before == old[1]


def test_expired_idempotency_records_are_deleted(api: Api) -> None:
    # GIVEN Idempotency-Key records that expired, and one that has not
    keys = {"expired": f"key-{new_id()}", "also_expired": f"key-{new_id()}", "live": f"key-{new_id()}"}
    with UnitOfWork(unscoped=True) as uow:
        for name, key in keys.items():
            idempotency.insert(uow.session, owner=api.workspace_id, key=key, fingerprint="0" * 64,
                               ttl_seconds=3600 if name == "live" else -3600, status=201, headers={}, body="{}")
        uow.commit()

    # WHEN the hourly expiry runs, in batches of one
    counts = expire_stale_entries(now=utcnow(), batch_size=1)

    # THEN only the live record is left
    with UnitOfWork(unscoped=True) as uow:
        left = set(uow.session.scalars(select(idempotency.IdempotencyRecord.key_digest).where(
            idempotency.IdempotencyRecord.owner == api.workspace_id)))
    assert left == {idempotency.key_digest(keys["live"])}
    assert counts["idempotency_records"] >= 2
