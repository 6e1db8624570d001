"""Custom field values on records: every type on contacts and companies through every write path
(single create/update, batch create/update/upsert), required and unique enforced, values on reads."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, Reply
from tests.support.custom_fields import INVALID, VALID, define, define_every_type, field_tables

OBJECTS = ["contacts", "companies"]
SENT = {key: sent for key, (sent, _) in VALID.items()}
STORED = {key: stored for key, (_, stored) in VALID.items()}
INVALID_PATHS = sorted(f"custom_fields.{key}" for key in INVALID)


def base(object_type: str, n: int = 0) -> dict[str, Any]:
    """Built-in values of a new record, with the object's unique property (email/domain)."""
    if object_type == "contacts":
        return {"first_name": f"P{n}", "email": f"p{n}@example.com"}
    return {"name": f"Co {n}", "domain": f"co{n}.example.com"}


def unique_prop(object_type: str) -> str:
    return "email" if object_type == "contacts" else "domain"


def fields_at_fault(reply_or_problem: Reply | dict[str, Any]) -> list[str]:
    body = reply_or_problem.json if isinstance(reply_or_problem, Reply) else reply_or_problem
    return sorted(e["field"].removeprefix("inputs.0.") for e in body["errors"])


def records(api: Api, object_type: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/{object_type}?limit=200").json["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("object_type", OBJECTS)
def test_single_create_and_update_store_every_type_and_reads_return_them(api: Api, object_type: str) -> None:
    # GIVEN a field of every type
    define_every_type(api, object_type)

    # WHEN a record is created with a value for each
    created = api.post(f"/v1/{object_type}", {**base(object_type), "custom_fields": SENT})

    # THEN each is stored in its canonical form, and get and list return the same
    assert created.status == 201, created.raw
    assert created.json["custom_fields"] == STORED
    path = f"/v1/{object_type}/{created.json['id']}"
    assert api.get(path).json["custom_fields"] == STORED
    assert records(api, object_type)[0]["custom_fields"] == STORED
    # ... the history names each custom value
    history = {h["field"] for h in api.get(f"{path}/history").json["data"]}
    assert {f"custom_fields.{key}" for key in STORED} <= history

    # WHEN values are changed and removed by an update
    updated = api.patch(path, {"custom_fields": {"score": -2, "tier": "Silver", "note": None, "interests": []}})

    # THEN only those change: null and an empty multi select remove the value
    assert updated.status == 200, updated.raw
    expected = {k: v for k, v in STORED.items() if k not in ("note", "interests")}
    assert updated.json["custom_fields"] == {**expected, "score": -2, "tier": "Silver"}


@pytest.mark.parametrize("object_type", OBJECTS)
def test_single_writes_refuse_every_misfit_at_once_and_write_nothing(api: Api, object_type: str) -> None:
    # GIVEN a field of every type and a record
    define_every_type(api, object_type)
    record = api.post(f"/v1/{object_type}", base(object_type, 1)).json
    before = records(api, object_type)

    # WHEN a record is created, or updated, with a bad value for each (and an unknown key)
    created = api.post(f"/v1/{object_type}", {**base(object_type), "custom_fields": {**INVALID, "nope": 1}})
    updated = api.patch(f"/v1/{object_type}/{record['id']}", {"custom_fields": INVALID})

    # THEN one 422 names every field at fault, and nothing was written
    assert created.status == 422 and updated.status == 422
    assert fields_at_fault(created) == sorted([*INVALID_PATHS, "custom_fields.nope"])
    assert fields_at_fault(updated) == INVALID_PATHS
    assert records(api, object_type) == before


@pytest.mark.parametrize("object_type", OBJECTS)
def test_batch_create_update_and_upsert_validate_each_input(api: Api, object_type: str) -> None:
    # GIVEN a field of every type
    define_every_type(api, object_type)
    key = unique_prop(object_type)

    # WHEN a batch creates one good record and one bad one
    made = api.post(f"/v1/{object_type}/batch/create", {"inputs": [
        {**base(object_type, 1), "custom_fields": SENT},
        {**base(object_type, 2), "custom_fields": INVALID},
    ]})

    # THEN the good one is stored canonically, the bad one fails alone naming its fields
    assert made.status == 207, made.raw
    good, bad = made.json["results"]
    assert (good["status"], good["record"]["custom_fields"]) == (201, STORED)
    assert bad["status"] == 422
    assert sorted(e["field"] for e in bad["problem"]["errors"]) == [f"inputs.1.{p}" for p in INVALID_PATHS]
    record_id = good["record"]["id"]

    # WHEN a batch updates the record, once well and once badly
    changed = api.post(f"/v1/{object_type}/batch/update", {"inputs": [
        {"id": record_id, "custom_fields": {"score": 1, "vip": False}},
        {"id": record_id, "custom_fields": {"vip": "no"}},
    ]})
    assert changed.status == 207
    assert changed.json["results"][0]["record"]["custom_fields"] == {**STORED, "score": 1, "vip": False}
    assert changed.json["results"][1]["problem"]["errors"][0]["field"] == "inputs.1.custom_fields.vip"

    # WHEN a batch upserts: an update of the record, a new record, and a bad input
    upserted = api.post(f"/v1/{object_type}/batch/upsert", {"inputs": [
        {**base(object_type, 1), "custom_fields": {"budget": 99}},
        {**base(object_type, 3), "custom_fields": {"tier": "bronze"}},
        {**base(object_type, 4), "custom_fields": {"budget": 0.5}},
    ]})

    # THEN each is validated: the update merges, the create stores, the bad one fails alone
    assert upserted.status == 207, upserted.raw
    update, create, failed = upserted.json["results"]
    assert (update["outcome"], update["record"]["custom_fields"]["budget"]) == ("updated", "99")
    assert update["record"]["custom_fields"]["vip"] is False
    assert (create["outcome"], create["record"]["custom_fields"]) == ("created", {"tier": "Bronze"})
    assert failed["status"] == 422 and failed["problem"]["errors"][0]["field"] == "inputs.2.custom_fields.budget"
    assert sorted(r[key] for r in records(api, object_type)) == sorted(base(object_type, n)[key] for n in (1, 3))


@pytest.mark.parametrize("object_type", OBJECTS)
def test_required_fields_are_enforced_on_every_create_and_cannot_be_cleared(api: Api, object_type: str) -> None:
    # GIVEN a required field and an optional one
    define(api, object_type, "region", "single_select", required=True, options=["EU", "US"])
    define(api, object_type, "note", "text")

    # WHEN records are created without it: single, batch, upsert; or with a blank value
    single = api.post(f"/v1/{object_type}", {**base(object_type, 1), "custom_fields": {"note": "x"}})
    blank = api.post(f"/v1/{object_type}", {**base(object_type, 1), "custom_fields": {"region": None}})
    batch = api.post(f"/v1/{object_type}/batch/create", {"inputs": [base(object_type, 2)]})
    upsert = api.post(f"/v1/{object_type}/batch/upsert", {"inputs": [base(object_type, 3)]})

    # THEN each is 422 "missing" at custom_fields.region, and no record exists
    assert single.status == 422 and single.json["errors"] == [
        {"field": "custom_fields.region", "message": "is required", "code": "missing"}]
    assert fields_at_fault(blank) == ["custom_fields.region"]
    assert batch.json["results"][0]["problem"]["errors"][0]["field"] == "inputs.0.custom_fields.region"
    assert upsert.json["results"][0]["problem"]["errors"][0]["field"] == "inputs.0.custom_fields.region"
    assert records(api, object_type) == []

    # WHEN a record with the value is updated: the optional field changes, the required one is nulled
    record = api.post(f"/v1/{object_type}", {**base(object_type, 4), "custom_fields": {"region": "eu"}}).json
    path = f"/v1/{object_type}/{record['id']}"
    assert api.patch(path, {"custom_fields": {"note": "ok"}}).status == 200
    cleared = api.patch(path, {"custom_fields": {"region": None}})
    batch_cleared = api.post(f"/v1/{object_type}/batch/update",
                             {"inputs": [{"id": record["id"], "custom_fields": {"region": None}}]})
    upsert_cleared = api.post(f"/v1/{object_type}/batch/upsert",
                              {"inputs": [{**base(object_type, 4), "custom_fields": {"region": None}}]})

    # THEN clearing it is refused on every path; it keeps its value
    assert fields_at_fault(cleared) == ["custom_fields.region"]
    assert batch_cleared.json["results"][0]["status"] == 422
    assert upsert_cleared.json["results"][0]["status"] == 422
    assert api.get(path).json["custom_fields"] == {"region": "EU", "note": "ok"}
    # ... and an upsert that does not name it updates the rest
    kept = api.post(f"/v1/{object_type}/batch/upsert",
                    {"inputs": [{**base(object_type, 4), "custom_fields": {"note": "later"}}]})
    assert kept.json["results"][0]["record"]["custom_fields"] == {"region": "EU", "note": "later"}


@pytest.mark.parametrize("object_type", OBJECTS)
def test_unique_values_are_409_naming_the_holder_on_every_path(api: Api, object_type: str) -> None:
    # GIVEN a unique email field held by one record
    field = define(api, object_type, "billing_email", "email", unique=True)
    holder = api.post(f"/v1/{object_type}", {**base(object_type, 1),
                                             "custom_fields": {"billing_email": "bill@example.com"}}).json
    other = api.post(f"/v1/{object_type}", base(object_type, 2)).json
    taken = {"billing_email": "BILL@example.com "}
    before = records(api, object_type)

    # WHEN another record takes the value: create, update, batch create/update, upsert (create and update)
    replies = [
        api.post(f"/v1/{object_type}", {**base(object_type, 3), "custom_fields": taken}),
        api.patch(f"/v1/{object_type}/{other['id']}", {"custom_fields": taken}),
    ]
    batches = [
        api.post(f"/v1/{object_type}/batch/create", {"inputs": [{**base(object_type, 3), "custom_fields": taken}]}),
        api.post(f"/v1/{object_type}/batch/update", {"inputs": [{"id": other["id"], "custom_fields": taken}]}),
        api.post(f"/v1/{object_type}/batch/upsert", {"inputs": [{**base(object_type, 3), "custom_fields": taken}]}),
        api.post(f"/v1/{object_type}/batch/upsert", {"inputs": [{**base(object_type, 2), "custom_fields": taken}]}),
    ]

    # THEN each is 409 naming the holder, and nothing changed
    for reply in replies:
        assert reply.status == 409, reply.raw
        assert (reply.json["existing_id"], reply.json["field"]) == (holder["id"], "custom_fields.billing_email")
    for reply in batches:
        result = reply.json["results"][0]
        assert (result["status"], result["problem"]["existing_id"]) == (409, holder["id"]), reply.raw
    assert records(api, object_type) == before

    # ... the holder itself may write its value again
    same = api.patch(f"/v1/{object_type}/{holder['id']}", {"custom_fields": {"billing_email": "bill@example.com"}})
    assert same.status == 200
    # ... two inputs of one batch with one new value: the second names the first
    pair = api.post(f"/v1/{object_type}/batch/create", {"inputs": [
        {**base(object_type, 5), "custom_fields": {"billing_email": "new@example.com"}},
        {**base(object_type, 6), "custom_fields": {"billing_email": "new@example.com"}},
    ]}).json["results"]
    assert pair[1]["problem"]["existing_id"] == pair[0]["record"]["id"]

    # WHEN the holder is archived THEN the value is free; restoring the holder is then 409
    assert api.delete(f"/v1/{object_type}/{holder['id']}").status == 204
    moved = api.patch(f"/v1/{object_type}/{other['id']}", {"custom_fields": taken})
    assert moved.status == 200
    assert api.post(f"/v1/{object_type}/{holder['id']}/restore").json["existing_id"] == other["id"]
    # ... and a changed value gives the old one back
    assert api.patch(f"/v1/{object_type}/{other['id']}",
                     {"custom_fields": {"billing_email": "else@example.com"}}).status == 200
    assert api.post(f"/v1/{object_type}/{holder['id']}/restore").status == 200
    assert sorted(f for f, _ in field_tables(api).claims) == [field["id"]] * 3


def test_a_contact_field_does_not_apply_to_companies(api: Api) -> None:
    # GIVEN a contact field
    define(api, "contacts", "tier", "text", required=True)
    # WHEN a company is written with that key, or without it THEN the key is unknown there, and not required
    assert fields_at_fault(api.post("/v1/companies", {"name": "Acme", "custom_fields": {"tier": "x"}})) == \
        ["custom_fields.tier"]
    assert api.post("/v1/companies", {"name": "Acme"}).status == 201
