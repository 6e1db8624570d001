"""Deals over HTTP: CRUD with defaults, exact amounts, stage rules and stage changes, contacts, the board,
tenancy, and nothing half-written when a write fails."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from functions.associations.models import Association
from functions.deals.models import Deal, DealStageChange
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.records.history import FieldHistory
from shared.context import system_scope
from tests.support.api import Api, Reply

PROBLEM_JSON = "application/problem+json"
RECORD_FIELDS = {"id", "name", "amount", "currency", "pipeline_id", "stage_id", "expected_close_date", "owner_id",
                 "company_id", "contact_ids", "primary_contact_id", "tags", "custom_fields", "closed_at",
                 "lost_reason", "stage_entered_at", "last_activity_at", "created_at", "updated_at", "archived_at"}


@dataclass(frozen=True)
class Written:
    """What the workspace's deal tables hold, as plain values so two snapshots compare."""

    deals: list[tuple[str, str, int, str | None]]  # (id, stage, version, lost_reason)
    stage_changes: list[tuple[str, str | None, str, str]]  # (deal, from, to, actor)
    history: list[tuple[str, str, str]]  # (record, action, field)
    events: list[tuple[str, str, dict[str, Any]]]  # (event_type, record_id, data)
    links: list[tuple[str, str, bool]]  # (contact, deal, is_primary)

    def event_types(self, record_id: str) -> list[str]:
        return [kind for kind, rid, _ in self.events if rid == record_id]


def written(api: Api) -> Written:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        session = uow.session
        return Written(
            deals=[(d.id, d.stage_id, d.version, d.lost_reason)
                   for d in session.scalars(select(Deal).order_by(Deal.id))],
            stage_changes=[(c.deal_id, c.from_stage_id, c.to_stage_id, c.actor_id)
                           for c in session.scalars(select(DealStageChange).order_by(DealStageChange.id))],
            history=[(h.record_id, h.action, h.field) for h in session.scalars(
                select(FieldHistory).where(FieldHistory.object_type == "deals").order_by(FieldHistory.id))],
            events=[(e.event_type, e.record_id, e.payload["data"]) for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.object_type == "deals").order_by(OutboxEvent.id))],
            links=[(a.from_id, a.to_id, a.is_primary) for a in session.scalars(
                select(Association).where(Association.to_type == "deals").order_by(Association.from_id))],
        )


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    body = reply.json
    assert body["status"] == status and body["instance"] == reply.header("X-Request-Id")
    return body  # type: ignore[no-any-return]


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, reply.raw
    return reply.json  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Sales:
    """The default pipeline's stages, by kind and order."""

    pipeline_id: str
    stages: list[str]

    @property
    def first(self) -> str:
        return self.stages[0]

    @property
    def second(self) -> str:
        return self.stages[1]

    @property
    def won(self) -> str:
        return self.stages[5]

    @property
    def lost(self) -> str:
        return self.stages[6]


def sales(api: Api) -> Sales:
    pipeline = next(p for p in ok(api.get("/v1/pipelines"))["data"] if p["is_default"])
    return Sales(pipeline["id"], [s["id"] for s in pipeline["stages"]])


def create_deal(api: Api, **fields: Any) -> dict[str, Any]:
    return created(api.post("/v1/deals", {"name": "Deal", **fields}))


def contact(api: Api, name: str = "Pat") -> str:
    return str(created(api.post("/v1/contacts", {"first_name": name}))["id"])


# ---- create and read ----------------------------------------------------------------------------------
def test_create_defaults_to_the_default_pipeline_and_its_first_open_stage(api: Api) -> None:
    # GIVEN a new workspace and its default pipeline
    pipeline = sales(api)

    # WHEN a deal is created with a name only
    reply = api.post("/v1/deals", {"name": "Acme renewal", "tags": ["q4"], "expected_close_date": "2026-12-31"})

    # THEN it is in the first stage of the default pipeline, open, with a location and its first version
    deal = created(reply)
    assert set(deal) == RECORD_FIELDS
    assert reply.header("Location") == f"/v1/deals/{deal['id']}" and reply.header("ETag") == '"v1"'
    assert (deal["pipeline_id"], deal["stage_id"]) == (pipeline.pipeline_id, pipeline.first)
    assert deal["closed_at"] is None and deal["lost_reason"] is None and deal["amount"] is None
    assert deal["stage_entered_at"].endswith("Z") and deal["expected_close_date"] == "2026-12-31"
    assert deal["contact_ids"] == [] and deal["primary_contact_id"] is None
    # AND reading it back answers the same deal
    again = api.get(f"/v1/deals/{deal['id']}")
    assert again.status == 200 and again.json == deal and again.header("ETag") == '"v1"'


def test_create_records_entering_the_first_stage(api: Api) -> None:
    # GIVEN an empty workspace
    pipeline = sales(api)

    # WHEN a deal is created
    deal = create_deal(api)

    # THEN one stage change (from nothing to the first stage) and its event were written with the deal
    state = written(api)
    assert state.stage_changes == [(deal["id"], None, pipeline.first, api.api_key_id)]
    assert state.event_types(deal["id"]) == ["deal.created", "deal.stage_changed"]
    changed = state.events[1][2]
    assert (changed["from_stage_id"], changed["from_kind"], changed["to_stage_id"], changed["to_kind"]) == (
        None, None, pipeline.first, "open")
    assert changed["pipeline_id"] == pipeline.pipeline_id and changed["deal_id"] == deal["id"]


def test_create_in_a_named_stage_takes_that_stage_pipeline(api: Api) -> None:
    # GIVEN a second pipeline
    other = created(api.post("/v1/pipelines", {"name": "Partners", "stages": [
        {"name": "Intro", "probability": "0.1"}, {"name": "Signed", "probability": "1", "kind": "won"}]}))

    # WHEN a deal is created in its won stage, without naming the pipeline
    deal = create_deal(api, stage_id=other["stages"][1]["id"])

    # THEN it is in that pipeline, closed as won
    assert deal["pipeline_id"] == other["id"] and deal["closed_at"] is not None
    # AND naming the pipeline only puts the deal in its first open stage
    assert create_deal(api, pipeline_id=other["id"])["stage_id"] == other["stages"][0]["id"]


@pytest.mark.parametrize("fields, field", [
    ({"stage_id": "lost"}, "lost_reason"),  # a lost stage needs a reason
    ({"stage_id": "first", "lost_reason": "Budget"}, "lost_reason"),  # an open deal has none
    ({"pipeline_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "pipeline_id"),
    ({"stage_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "stage_id"),
    ({"pipeline_id": "other", "stage_id": "first"}, "stage_id"),  # a stage of another pipeline
    ({"owner_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "owner_id"),
    ({"company_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "company_id"),
    ({"contact_ids": ["01JAAAAAAAAAAAAAAAAAAAAAAA"]}, "contact_ids"),
    ({"name": ""}, "name"),
    ({"closed_at": "2026-01-01T00:00:00Z"}, "closed_at"),
    ({"probability": "0.5"}, "probability"),
])
def test_create_refuses_invalid_deals_and_writes_nothing(api: Api, fields: dict[str, Any], field: str) -> None:
    # GIVEN the default pipeline and another one
    pipeline = sales(api)
    other = created(api.post("/v1/pipelines", {"name": "Other", "stages": [{"name": "A", "probability": "0.5"}]}))
    names = {"lost": pipeline.lost, "first": pipeline.first, "other": other["id"]}
    body = {"name": "Deal", **{k: names.get(v, v) if isinstance(v, str) else v for k, v in fields.items()}}
    before = written(api)

    # WHEN the invalid deal is posted
    reply = api.post("/v1/deals", body)

    # THEN 422 names the field at fault, and nothing was written
    assert field in error_fields(assert_problem(reply, 422))
    assert written(api) == before


def test_owner_and_company_are_checked_references(api: Api) -> None:
    # GIVEN a company and the workspace owner
    company = created(api.post("/v1/companies", {"name": "Acme"}))

    # WHEN a deal names them THEN it keeps them
    deal = create_deal(api, owner_id=api.owner_user_id, company_id=company["id"])
    assert (deal["owner_id"], deal["company_id"]) == (api.owner_user_id, company["id"])
    # AND an archived company cannot be named
    other = create_deal(api)
    assert api.delete(f"/v1/companies/{company['id']}").status == 204
    assert error_fields(assert_problem(api.patch(f"/v1/deals/{other['id']}", {"company_id": company["id"]}),
                                       422)) == {"company_id"}


# ---- exact amounts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("amount, currency, answered", [
    ("12345678901234.5678", "CLF", "12345678901234.5678"),  # CLF has four places: the column's full precision
    ("99999999999999", "JPY", "99999999999999"),  # 14 digits before the point: the most an amount has
    ("12.5", "usd", "12.50"),
    (1250, "JPY", "1250"),
    ("1.234", "BHD", "1.234"),
    ("0.1", "EUR", "0.10"),
])
def test_amounts_round_trip_exactly(api: Api, amount: Any, currency: str, answered: str) -> None:
    # GIVEN an amount as a decimal string (or an integer)
    # WHEN a deal is created with it
    deal = create_deal(api, amount=amount, currency=currency)

    # THEN every read answers it exactly, in the currency's minor units, never as a float
    assert (deal["amount"], deal["currency"]) == (answered, currency.upper())
    assert ok(api.get(f"/v1/deals/{deal['id']}"))["amount"] == answered
    assert ok(api.get("/v1/deals"))["data"][0]["amount"] == answered
    found = ok(api.post("/v1/deals/search", {"filter_groups": [{"filters": [
        {"property": "currency", "operator": "EQ", "value": currency.upper()}]}],
        "sorts": [{"property": "amount", "direction": "desc"}]}))["data"]
    assert [(d["id"], d["amount"]) for d in found] == [(deal["id"], answered)]


@pytest.mark.parametrize("fields, field", [
    ({"amount": 12.5, "currency": "USD"}, "amount"),  # a float: not exact
    ({"amount": "12.5", "currency": "JPY"}, "amount"),  # yen have no minor unit
    ({"amount": "1.2345", "currency": "BHD"}, "amount"),
    ({"amount": "-5", "currency": "USD"}, "amount"),
    ({"amount": "1e3", "currency": "USD"}, "amount"),
    ({"amount": "100000000000000", "currency": "USD"}, "amount"),  # 15 digits before the point
    ({"amount": "10"}, "currency"),  # an amount needs a currency
    ({"amount": "10", "currency": "XAU"}, "currency"),
    ({"amount": "10", "currency": "EURO"}, "currency"),
])
def test_inexact_or_unpriced_amounts_are_refused(api: Api, fields: dict[str, Any], field: str) -> None:
    before = written(api)
    assert field in error_fields(assert_problem(api.post("/v1/deals", {"name": "Deal", **fields}), 422))
    assert written(api) == before


def test_an_update_checks_the_amount_against_the_currency_it_will_have(api: Api) -> None:
    # GIVEN a deal of 12.50 USD
    deal = create_deal(api, amount="12.50", currency="USD")

    # WHEN its currency becomes yen, or its amount is cleared of its currency THEN 422
    assert error_fields(assert_problem(api.patch(f"/v1/deals/{deal['id']}", {"currency": "JPY"}), 422)) == {"amount"}
    assert error_fields(assert_problem(api.patch(f"/v1/deals/{deal['id']}", {"currency": None}), 422)) == {"currency"}
    # WHEN the amount becomes a whole number THEN yen are fine
    moved = ok(api.patch(f"/v1/deals/{deal['id']}", {"amount": "1300", "currency": "JPY"}))
    assert (moved["amount"], moved["currency"]) == ("1300", "JPY")
    # AND an unchanged amount written again (same value, other spelling) is no change at all
    again = api.patch(f"/v1/deals/{deal['id']}", {"amount": "1300.0"})
    assert again.status == 200 and again.header("ETag") == '"v2"'


def test_search_filters_and_sorts_by_exact_amount(api: Api) -> None:
    # GIVEN deals of 0.10, 0.20 and 100000000000.01 USD
    ids = {a: create_deal(api, amount=a, currency="USD")["id"] for a in ("0.10", "0.20", "100000000000.01")}

    # WHEN searched for amounts above 0.15, largest first, one per page
    above = {"property": "amount", "operator": "GT", "value": 0.15}
    request: dict[str, Any] = {"filter_groups": [{"filters": [above]}],
                               "sorts": [{"property": "amount", "direction": "desc"}], "limit": 1}
    first = ok(api.post("/v1/deals/search", request))
    second = ok(api.post("/v1/deals/search", {**request, "cursor": first["next_cursor"]}))

    # THEN the two above come in amount order, across pages
    assert [d["id"] for d in first["data"] + second["data"]] == [ids["100000000000.01"], ids["0.20"]]
    assert second["next_cursor"] is None


def test_search_filters_and_sorts_by_expected_close_date(api: Api) -> None:
    # GIVEN deals closing on three dates, and one without a date
    ids = {d: create_deal(api, expected_close_date=d)["id"] for d in ("2026-05-31", "2026-06-01", "2026-07-15")}
    create_deal(api)

    # WHEN searched for those closing from June on, latest first, one per page
    request: dict[str, Any] = {"filter_groups": [{"filters": [
        {"property": "expected_close_date", "operator": "GTE", "value": "2026-06-01"}]}],
        "sorts": [{"property": "expected_close_date", "direction": "desc"}], "limit": 1}
    first = ok(api.post("/v1/deals/search", request))
    second = ok(api.post("/v1/deals/search", {**request, "cursor": first["next_cursor"]}))

    # THEN the July deal then the June one come, and nothing after
    assert [d["id"] for d in first["data"] + second["data"]] == [ids["2026-07-15"], ids["2026-06-01"]]
    assert second["next_cursor"] is None


# ---- stages -------------------------------------------------------------------------------------------
def test_moving_to_a_lost_stage_needs_a_reason_and_a_refused_move_writes_nothing(api: Api) -> None:
    # GIVEN an open deal
    pipeline = sales(api)
    deal = create_deal(api, amount="100", currency="EUR")
    before = written(api)

    # WHEN it is moved to the lost stage without a reason, by the move endpoint and by PATCH
    by_move = api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.lost})
    by_patch = api.patch(f"/v1/deals/{deal['id']}", {"stage_id": pipeline.lost})

    # THEN both are 422 on lost_reason, and nothing at all was written (no row, version, history or event)
    assert error_fields(assert_problem(by_move, 422)) == {"lost_reason"}
    assert error_fields(assert_problem(by_patch, 422)) == {"lost_reason"}
    assert written(api) == before
    assert api.get(f"/v1/deals/{deal['id']}").json == deal


def test_lost_won_and_reopened_deals_follow_the_stage_rules(api: Api) -> None:
    # GIVEN an open deal
    pipeline = sales(api)
    deal = create_deal(api)

    # WHEN it is lost with a reason
    lost = api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.lost, "lost_reason": "Budget"})
    # THEN it is closed with that reason, at the time it entered the stage
    assert lost.status == 200 and lost.header("ETag") == '"v2"'
    assert lost.json["lost_reason"] == "Budget" and lost.json["closed_at"] == lost.json["stage_entered_at"]

    # WHEN it is won instead THEN the reason goes and the close date is the new one
    won = ok(api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.won}))
    assert won["lost_reason"] is None and won["closed_at"] == won["stage_entered_at"] > lost.json["closed_at"]

    # WHEN it goes back to an open stage THEN it is open again
    reopened = ok(api.patch(f"/v1/deals/{deal['id']}", {"stage_id": pipeline.second}))
    assert reopened["closed_at"] is None and reopened["lost_reason"] is None

    # AND a lost reason cannot be given to an open deal
    assert error_fields(assert_problem(api.patch(f"/v1/deals/{deal['id']}", {"lost_reason": "x"}), 422)) == {
        "lost_reason"}


def test_a_lost_deal_reason_can_be_edited_but_not_removed(api: Api) -> None:
    pipeline = sales(api)
    deal = create_deal(api, stage_id=pipeline.lost, lost_reason="Budget")
    assert ok(api.patch(f"/v1/deals/{deal['id']}", {"lost_reason": "Timing"}))["lost_reason"] == "Timing"
    assert error_fields(assert_problem(api.patch(f"/v1/deals/{deal['id']}", {"lost_reason": None}), 422)) == {
        "lost_reason"}
    # AND the edit is no stage change
    assert [c for c in written(api).stage_changes if c[0] == deal["id"]] == [
        (deal["id"], None, pipeline.lost, api.api_key_id)]


def test_every_stage_change_is_recorded_with_its_event(api: Api) -> None:
    # GIVEN a deal moved twice (once with other fields in the same PATCH)
    pipeline = sales(api)
    deal = create_deal(api)
    ok(api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.second}))
    ok(api.patch(f"/v1/deals/{deal['id']}", {"stage_id": pipeline.won, "name": "Won it"}))
    # AND a write that is not a move, and a move to the stage it is in
    ok(api.patch(f"/v1/deals/{deal['id']}", {"name": "Renamed"}))
    ok(api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.won}))

    # WHEN its stage changes are listed, one per page
    pages, cursor = [], None
    while True:
        reply = ok(api.get(f"/v1/deals/{deal['id']}/stage-changes?limit=1" + (f"&cursor={cursor}" if cursor else "")))
        pages += reply["data"]
        cursor = reply["next_cursor"]
        if cursor is None:
            break

    # THEN the three changes come newest first, chained, each by the caller
    assert [(c["from_stage_id"], c["to_stage_id"]) for c in pages] == [
        (pipeline.second, pipeline.won), (pipeline.first, pipeline.second), (None, pipeline.first)]
    assert all(c["actor"] == {"type": "api_key", "id": api.api_key_id} for c in pages)
    # AND each has its deal.stage_changed event, with the kinds
    changes = [data for kind, rid, data in written(api).events if kind == "deal.stage_changed"]
    assert [(c["from_kind"], c["to_kind"]) for c in changes] == [(None, "open"), ("open", "open"), ("open", "won")]
    # AND a cursor of another deal's changes is refused
    other = create_deal(api)
    first_page = ok(api.get(f"/v1/deals/{deal['id']}/stage-changes?limit=1"))
    assert_problem(api.get(f"/v1/deals/{other['id']}/stage-changes?cursor={first_page['next_cursor']}"), 422)


def test_changing_pipeline_needs_a_stage_of_the_new_pipeline(api: Api) -> None:
    # GIVEN a deal in the default pipeline, and another pipeline
    pipeline = sales(api)
    other = created(api.post("/v1/pipelines", {"name": "Partners", "stages": [
        {"name": "Intro", "probability": "0.1"}, {"name": "Signed", "probability": "1", "kind": "won"}]}))
    deal = create_deal(api)
    before = written(api)

    # WHEN its pipeline changes without a stage, with a stage of the old pipeline, or a stage moves pipelines
    replies = [api.patch(f"/v1/deals/{deal['id']}", {"pipeline_id": other["id"]}),
               api.patch(f"/v1/deals/{deal['id']}", {"pipeline_id": other["id"], "stage_id": pipeline.second}),
               api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": other["stages"][0]["id"]})]

    # THEN each is 422 on stage_id and nothing changed
    for reply in replies:
        assert error_fields(assert_problem(reply, 422)) == {"stage_id"}
    assert written(api) == before

    # WHEN it names a stage of the new pipeline THEN it moves there, recorded as a stage change
    moved = ok(api.patch(f"/v1/deals/{deal['id']}", {"pipeline_id": other["id"], "stage_id": other["stages"][1]["id"]}))
    assert (moved["pipeline_id"], moved["stage_id"]) == (other["id"], other["stages"][1]["id"])
    assert moved["closed_at"] is not None
    last = [data for kind, _, data in written(api).events if kind == "deal.stage_changed"][-1]
    assert (last["from_pipeline_id"], last["pipeline_id"]) == (pipeline.pipeline_id, other["id"])


def test_if_match_guards_a_move(api: Api) -> None:
    pipeline = sales(api)
    deal = create_deal(api)
    assert_problem(api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.second},
                            headers={"If-Match": '"v7"'}), 412)
    moved = api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.second}, headers={"If-Match": '"v1"'})
    assert moved.status == 200 and moved.header("ETag") == '"v2"'


# ---- contacts -----------------------------------------------------------------------------------------------
def test_contacts_are_stored_as_associations_with_one_primary(api: Api) -> None:
    # GIVEN three contacts
    ann, bob, cat = contact(api, "Ann"), contact(api, "Bob"), contact(api, "Cat")

    # WHEN a deal is created with two of them and a third as primary
    deal = create_deal(api, contact_ids=[ann, bob], primary_contact_id=cat)

    # THEN it has all three (in id order), the third primary, stored as associations
    assert deal["contact_ids"] == sorted([ann, bob, cat]) and deal["primary_contact_id"] == cat
    assert sorted(written(api).links) == sorted([(ann, deal["id"], False), (bob, deal["id"], False),
                                                 (cat, deal["id"], True)])

    # WHEN the primary changes to Ann THEN only Ann is primary, the version and history move on
    moved = api.patch(f"/v1/deals/{deal['id']}", {"primary_contact_id": ann})
    assert moved.status == 200 and moved.header("ETag") == '"v2"' and moved.json["primary_contact_id"] == ann
    assert {(c, p) for c, _, p in written(api).links} == {(ann, True), (bob, False), (cat, False)}

    # WHEN the list drops Ann THEN she is unlinked and there is no primary any more
    trimmed = ok(api.patch(f"/v1/deals/{deal['id']}", {"contact_ids": [bob, cat]}))
    assert trimmed["contact_ids"] == sorted([bob, cat]) and trimmed["primary_contact_id"] is None
    assert {c for c, _, _ in written(api).links} == {bob, cat}
    assert ok(api.get(f"/v1/deals/{deal['id']}")) == trimmed
    fields = [f for rid, action, f in written(api).history if rid == deal["id"] and action == "updated"]
    assert fields.count("contact_ids") == 1 and fields.count("primary_contact_id") == 2


def test_reads_show_live_contacts_only_and_writing_the_same_contacts_is_no_change(api: Api) -> None:
    # GIVEN a deal with two contacts, one of which is then archived
    ann, bob = contact(api, "Ann"), contact(api, "Bob")
    deal = create_deal(api, contact_ids=[ann, bob], primary_contact_id=ann)
    assert api.delete(f"/v1/contacts/{ann}").status == 204

    # WHEN the deal is read (single and list) THEN the archived contact is hidden, not lost
    assert ok(api.get(f"/v1/deals/{deal['id']}"))["contact_ids"] == [bob]
    assert ok(api.get("/v1/deals"))["data"][0]["contact_ids"] == [bob]
    assert ok(api.post(f"/v1/contacts/{ann}/restore"))
    assert ok(api.get(f"/v1/deals/{deal['id']}"))["primary_contact_id"] == ann

    # WHEN the same contacts are written again THEN nothing changes (same version)
    again = api.patch(f"/v1/deals/{deal['id']}", {"contact_ids": [bob, ann], "primary_contact_id": ann})
    assert again.status == 200 and again.header("ETag") == '"v1"'


def test_contacts_of_another_workspace_cannot_be_linked(api: Api, other_api: Api) -> None:
    foreign = contact(other_api)
    deal = create_deal(api)
    before = written(api)
    assert error_fields(assert_problem(api.patch(f"/v1/deals/{deal['id']}", {"contact_ids": [foreign]}), 422)) == {
        "contact_ids"}
    assert error_fields(assert_problem(api.patch(f"/v1/deals/{deal['id']}", {"primary_contact_id": foreign}),
                                       422)) == {"contact_ids"}
    assert written(api) == before


# ---- the board ---------------------------------------------------------------------------------------------
def test_the_board_counts_and_sums_each_stage_per_currency(api: Api) -> None:
    # GIVEN deals in three stages and three currencies, one without an amount and one archived
    pipeline = sales(api)
    create_deal(api, amount="0.10", currency="USD")
    create_deal(api, amount="0.20", currency="USD")
    create_deal(api, amount="1250", currency="JPY")
    create_deal(api)
    create_deal(api, stage_id=pipeline.second, amount="12345678901234.5678", currency="CLF")
    create_deal(api, stage_id=pipeline.second, amount="0.0001", currency="CLF")
    create_deal(api, stage_id=pipeline.won, amount="1.005", currency="BHD")
    gone = create_deal(api, stage_id=pipeline.won, amount="1000", currency="BHD")
    assert api.delete(f"/v1/deals/{gone['id']}").status == 204

    # WHEN the board is read
    board = ok(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board"))

    # THEN every stage is there in order, with the live deals' count and exact sums per currency
    assert board["pipeline_id"] == pipeline.pipeline_id and board["name"] == "Sales pipeline"
    assert [s["id"] for s in board["stages"]] == pipeline.stages
    by_stage = {s["id"]: s for s in board["stages"]}
    assert (by_stage[pipeline.first]["count"], by_stage[pipeline.first]["amounts"]) == (
        4, [{"currency": "JPY", "total": "1250"}, {"currency": "USD", "total": "0.30"}])
    assert (by_stage[pipeline.second]["count"], by_stage[pipeline.second]["amounts"]) == (
        2, [{"currency": "CLF", "total": "12345678901234.5679"}])
    assert (by_stage[pipeline.won]["count"], by_stage[pipeline.won]["amounts"]) == (
        1, [{"currency": "BHD", "total": "1.005"}])
    assert by_stage[pipeline.lost] == {**by_stage[pipeline.lost], "count": 0, "amounts": []}
    assert len(by_stage[pipeline.first]["deals"]["data"]) == 4
    assert gone["id"] not in str(board)


def test_each_board_column_pages_newest_first_without_repeats(api: Api) -> None:
    # GIVEN five deals in the first stage and one in the second
    pipeline = sales(api)
    firsts = [create_deal(api, name=f"D{i}")["id"] for i in range(5)]
    create_deal(api, stage_id=pipeline.second)

    # WHEN the board is read two deals per stage, then the first column paged on
    board = ok(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board?limit=2"))
    column = board["stages"][0]["deals"]
    seen = [d["id"] for d in column["data"]]
    cursor = column["next_cursor"]
    while cursor:
        page = ok(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board/stages/{pipeline.first}"
                          f"?limit=2&cursor={cursor}"))
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]

    # THEN the column holds all five, newest first, each once; the second column's single deal has no next page
    assert seen == list(reversed(firsts))
    assert board["stages"][1]["count"] == 1 and board["stages"][1]["deals"]["next_cursor"] is None
    # AND a column's cursor does not page another column
    assert_problem(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board/stages/{pipeline.second}"
                           f"?cursor={column['next_cursor']}"), 422)


def test_the_board_refuses_unknown_pipelines_stages_and_limits(api: Api) -> None:
    pipeline = sales(api)
    other = created(api.post("/v1/pipelines", {"name": "Other", "stages": [{"name": "A", "probability": "0.5"}]}))
    assert_problem(api.get("/v1/pipelines/01JAAAAAAAAAAAAAAAAAAAAAAA/board"), 404)
    assert_problem(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board/stages/{other['stages'][0]['id']}"), 404)
    assert_problem(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board?limit=0"), 422)
    assert_problem(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board?limit=201"), 422)
    assert_problem(api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board?color=red"), 422)


# ---- the standard routes, for deals ---------------------------------------------------------------------
def test_batch_upsert_is_refused_per_input_and_batch_create_applies_the_rules(api: Api) -> None:
    pipeline = sales(api)
    upsert = api.post("/v1/deals/batch/upsert", {"inputs": [{"name": "X"}]})
    assert upsert.status == 207 and upsert.json["results"][0]["status"] == 422
    batch = api.post("/v1/deals/batch/create", {"inputs": [
        {"name": "Good", "amount": "5", "currency": "USD"},
        {"name": "Lost without reason", "stage_id": pipeline.lost},
    ]})
    assert batch.status == 207
    good, bad = batch.json["results"]
    assert good["status"] == 201 and good["record"]["stage_id"] == pipeline.first
    assert bad["status"] == 422 and bad["problem"]["errors"][0]["field"] == "inputs.1.lost_reason"
    assert [c[0] for c in written(api).stage_changes] == [good["record"]["id"]]


def test_archive_restore_and_history_of_a_deal(api: Api) -> None:
    deal = create_deal(api, amount="10", currency="USD")
    assert api.delete(f"/v1/deals/{deal['id']}").status == 204
    assert_problem(api.get(f"/v1/deals/{deal['id']}"), 404)
    assert_problem(api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": deal["stage_id"]}), 404)
    assert ok(api.get(f"/v1/deals/{deal['id']}/stage-changes"))["data"]  # archived deals keep their changes
    restored = ok(api.post(f"/v1/deals/{deal['id']}/restore"))
    assert restored["archived_at"] is None and restored["amount"] == "10.00"
    actions = [entry["action"] for entry in ok(api.get(f"/v1/deals/{deal['id']}/history"))["data"]]
    assert actions[:2] == ["restored", "archived"] and "created" in actions


# ---- tenancy --------------------------------------------------------------------------------------------
def test_another_workspace_cannot_see_or_change_deals(api: Api, other_api: Api) -> None:
    # GIVEN a deal of the first workspace
    pipeline = sales(api)
    deal = create_deal(api, amount="10", currency="USD")
    before = written(api)

    # WHEN the other workspace reads, moves, changes and archives it, and reads the first one's board
    replies = [
        other_api.get(f"/v1/deals/{deal['id']}"),
        other_api.patch(f"/v1/deals/{deal['id']}", {"name": "Mine"}),
        other_api.post(f"/v1/deals/{deal['id']}/stage", {"stage_id": pipeline.second}),
        other_api.get(f"/v1/deals/{deal['id']}/stage-changes"),
        other_api.get(f"/v1/deals/{deal['id']}/history"),
        other_api.delete(f"/v1/deals/{deal['id']}"),
        other_api.post(f"/v1/deals/{deal['id']}/restore"),
        other_api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board"),
        other_api.get(f"/v1/pipelines/{pipeline.pipeline_id}/board/stages/{pipeline.first}"),
    ]

    # THEN everything is 404, its lists and board are empty of it, and nothing changed
    for reply in replies:
        assert_problem(reply, 404)
    assert ok(other_api.get("/v1/deals?include_archived=true"))["data"] == []
    own_board = ok(other_api.get(f"/v1/pipelines/{sales(other_api).pipeline_id}/board"))
    assert all(s["count"] == 0 for s in own_board["stages"])
    assert written(api) == before
