"""Cache-aside for single records on the real Redis: fills, hits, invalidation and stale fills."""
from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import text

from functions.contacts.models import Contact
from functions.contacts.service import contacts
from layers.cache import records as record_cache
from layers.db.engine import get_engine
from layers.db.uow import UnitOfWork
from shared.context import system_scope
from shared.ids import new_id
from shared.settings import get_settings
from tests.support.api import Api


def _key(api: Api, record_id: str) -> str:
    return f"rec:{api.workspace_id}:contacts:{record_id}"


def _create(api: Api) -> dict[str, Any]:
    reply = api.post("/v1/contacts", {"email": f"c-{new_id().lower()}@example.com", "job_title": "Original"})
    assert reply.status == 201
    return reply.json  # type: ignore[no-any-return]


def _write_behind_the_service(record_id: str, job_title: str) -> None:
    with get_engine().begin() as connection:
        changed = connection.execute(text("UPDATE contacts SET job_title = :t WHERE id = :id"),
                                     {"t": job_title, "id": record_id}).rowcount
    assert changed == 1


def test_first_get_fills_the_cache_and_the_second_is_served_from_redis(api: Api, real_redis: redis.Redis) -> None:
    # GIVEN a contact that is not cached
    record = _create(api)
    key = _key(api, record["id"])
    real_redis.delete(key)

    # WHEN it is read THEN the answer comes from the database and fills the cache
    first = api.get(f"/v1/contacts/{record['id']}")
    assert first.status == 200 and first.json == record and first.header("ETag") == '"v1"'
    cached = real_redis.get(key)
    assert cached is not None and cached.startswith("1|0|")  # type: ignore[arg-type]
    assert 0 < real_redis.ttl(key) <= get_settings().cache_ttl_seconds

    # WHEN the row changes behind the service's back THEN the next read is still the cached one
    _write_behind_the_service(record["id"], "Changed in SQL")
    second = api.get(f"/v1/contacts/{record['id']}")
    assert second.status == 200 and second.json["job_title"] == "Original"

    # WHEN it is changed through the API THEN the very next read shows the change
    patched = api.patch(f"/v1/contacts/{record['id']}", {"last_name": "Patched"})
    assert patched.status == 200 and patched.header("ETag") == '"v2"'
    third = api.get(f"/v1/contacts/{record['id']}")
    assert third.status == 200 and third.header("ETag") == '"v2"'
    assert third.json == patched.json
    assert third.json["last_name"] == "Patched"
    assert real_redis.get(key).startswith("2|0|")  # type: ignore[union-attr,arg-type]


def test_a_stale_fill_racing_a_write_cannot_win(api: Api) -> None:
    # GIVEN a reader that loaded version 1 from the database (its cache fill still to come)
    record = _create(api)
    scope = system_scope(api.workspace_id)
    epoch = record_cache.epoch()  # a reader takes the epoch before it reads the database
    with UnitOfWork(scope) as uow:
        row = uow.session.get(Contact, record["id"])
        assert row is not None and row.version == 1
        stale = record_cache.CachedRecord(row.version, False, contacts.spec.read_schema.model_validate(row)
                                          .model_dump_json())

    # WHEN a write to version 2 commits, and only then the reader stores what it read
    patched = api.patch(f"/v1/contacts/{record['id']}", {"job_title": "Newer"})
    assert patched.status == 200
    record_cache.fill(api.workspace_id, "contacts", record["id"], stale, epoch=epoch)

    # THEN readers still get version 2
    after = api.get(f"/v1/contacts/{record['id']}")
    assert after.header("ETag") == '"v2"' and after.json["job_title"] == "Newer"


def test_a_fill_during_a_commit_is_refused_and_readers_miss_until_it_lands(api: Api) -> None:
    # GIVEN a record cached at version 1
    record = _create(api)
    assert api.get(f"/v1/contacts/{record['id']}").header("ETag") == '"v1"'
    seen_during_commit: list[Any] = []

    def stale_reader_fills() -> None:
        # runs inside the writer's commit, after its pending marker and before COMMIT
        seen_during_commit.append(record_cache.get(api.workspace_id, "contacts", record["id"]))
        record_cache.fill(api.workspace_id, "contacts", record["id"],
                          record_cache.CachedRecord(1, False, api.get(f"/v1/contacts/{record['id']}").raw.decode()),
                          epoch=record_cache.epoch())

    # WHEN a write commits while a reader fills the cache with what it read (version 1)
    scope = system_scope(api.workspace_id)
    with UnitOfWork(scope) as uow:
        contacts._update(uow, record["id"], {"job_title": "During"}, None)
        uow.before_commit(stale_reader_fills)
        uow.commit()

    # THEN the reader saw a miss (not version 1) while the write was in flight, and its fill lost
    assert seen_during_commit == [None]
    after = api.get(f"/v1/contacts/{record['id']}")
    assert after.header("ETag") == '"v2"' and after.json["job_title"] == "During"


def test_archive_and_restore_invalidate_the_cache(api: Api, real_redis: redis.Redis) -> None:
    # GIVEN a cached record
    record = _create(api)
    assert api.get(f"/v1/contacts/{record['id']}").status == 200

    # WHEN it is archived THEN the very next read is a 404 (archived) and ?include_archived shows it
    assert api.delete(f"/v1/contacts/{record['id']}").status == 204
    assert api.get(f"/v1/contacts/{record['id']}").status == 404
    archived = api.get(f"/v1/contacts/{record['id']}?include_archived=true")
    assert archived.status == 200 and archived.json["archived_at"] is not None
    assert real_redis.get(_key(api, record["id"])).startswith("2|1|")  # type: ignore[union-attr,arg-type]

    # WHEN it is restored THEN it reads again at once
    assert api.post(f"/v1/contacts/{record['id']}/restore").status == 200
    restored = api.get(f"/v1/contacts/{record['id']}")
    assert restored.status == 200 and restored.json["archived_at"] is None and restored.header("ETag") == '"v3"'


def test_batch_writes_invalidate_the_cache(api: Api) -> None:
    # GIVEN two cached records
    first, second = _create(api), _create(api)
    for record in (first, second):
        assert api.get(f"/v1/contacts/{record['id']}").status == 200

    # WHEN one is updated and the other archived in batches
    assert api.post("/v1/contacts/batch/update", {"inputs": [{"id": first["id"], "job_title": "Batch"}]}).status == 200
    assert api.post("/v1/contacts/batch/archive", {"inputs": [{"id": second["id"]}]}).status == 200

    # THEN the next reads see both changes
    assert api.get(f"/v1/contacts/{first['id']}").json["job_title"] == "Batch"
    assert api.get(f"/v1/contacts/{second['id']}").status == 404


def test_the_cache_is_per_workspace(api: Api, other_api: Api) -> None:
    # GIVEN a record of A, cached
    record = _create(api)
    assert api.get(f"/v1/contacts/{record['id']}").status == 200
    # WHEN B asks for the same id THEN the cache does not answer for B
    assert other_api.get(f"/v1/contacts/{record['id']}").status == 404
