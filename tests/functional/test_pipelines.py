"""Pipelines over HTTP: the default pipeline, CRUD, the stage sub-resource, stage removal, tenancy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from functions.deals.models import Deal, DealStageChange
from functions.pipelines.models import Pipeline, Stage
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from shared.context import system_scope
from tests.support.api import Api, Reply

PROBLEM_JSON = "application/problem+json"
DEFAULT_STAGES = [
    ("Appointment scheduled", "0.2", "open"), ("Qualified to buy", "0.4", "open"),
    ("Presentation scheduled", "0.6", "open"), ("Decision maker bought-in", "0.8", "open"),
    ("Contract sent", "0.9", "open"), ("Closed won", "1", "won"), ("Closed lost", "0", "lost"),
]
THREE_STAGES = [{"name": "New", "probability": "0.1", "kind": "open"},
                {"name": "Won", "probability": "1", "kind": "won"},
                {"name": "Lost", "probability": "0", "kind": "lost"}]


@dataclass(frozen=True)
class Written:
    """What the workspace's pipeline and deal tables hold, as plain values so two snapshots compare."""

    pipelines: list[tuple[str, str, bool, int, bool]]  # (id, name, default, version, archived)
    stages: list[tuple[str, str, str, int, str, str, bool]]  # (id, pipeline, name, position, prob., kind, archived)
    deals: list[tuple[str, str, int]]  # (id, stage, version)
    stage_changes: list[tuple[str, str | None, str]]  # (deal, from, to)
    events: list[tuple[str, str]]  # (event_type, record_id)


def written(api: Api) -> Written:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        session = uow.session
        return Written(
            pipelines=[(p.id, p.name, p.is_default, p.version, p.archived_at is not None)
                       for p in session.scalars(select(Pipeline).order_by(Pipeline.id))],
            stages=[(s.id, s.pipeline_id, s.name, s.position, str(s.probability), s.kind, s.archived_at is not None)
                    for s in session.scalars(select(Stage).order_by(Stage.id))],
            deals=[(d.id, d.stage_id, d.version) for d in session.scalars(select(Deal).order_by(Deal.id))],
            stage_changes=[(c.deal_id, c.from_stage_id, c.to_stage_id)
                           for c in session.scalars(select(DealStageChange).order_by(DealStageChange.id))],
            events=[(e.event_type, e.record_id) for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.object_type.in_(("pipelines", "deals")))
                .order_by(OutboxEvent.id))],
        )


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    body = reply.json
    assert body["status"] == status and body["instance"] == reply.header("X-Request-Id")
    return body  # type: ignore[no-any-return]


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def create_pipeline(api: Api, name: str = "Renewals", stages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    reply = api.post("/v1/pipelines", {"name": name, "stages": stages or THREE_STAGES})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def default_pipeline(api: Api) -> dict[str, Any]:
    reply = api.get("/v1/pipelines")
    assert reply.status == 200, reply.raw
    return next(p for p in reply.json["data"] if p["is_default"])  # type: ignore[no-any-return]


def create_deal(api: Api, stage_id: str, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/deals", {"name": "Deal", "stage_id": stage_id, **fields})
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def stage_ids(pipeline: dict[str, Any]) -> list[str]:
    return [s["id"] for s in pipeline["stages"]]


# ---- the default pipeline -------------------------------------------------------------------------------
def test_a_new_workspace_has_the_default_sales_pipeline(api: Api) -> None:
    # GIVEN a workspace just created
    # WHEN its pipelines are listed
    reply = api.get("/v1/pipelines")

    # THEN it has one pipeline, the default "Sales pipeline", with the standard stages in order
    assert reply.status == 200
    [pipeline] = reply.json["data"]
    assert pipeline["name"] == "Sales pipeline" and pipeline["is_default"] is True
    assert [(s["name"], s["probability"], s["kind"]) for s in pipeline["stages"]] == DEFAULT_STAGES
    assert [s["position"] for s in pipeline["stages"]] == list(range(7))
    # AND its creation was an outbox event of the workspace
    assert ("pipeline.created", pipeline["id"]) in written(api).events


# ---- create, read, list -----------------------------------------------------------------------------------
def test_create_answers_the_pipeline_with_its_ordered_stages(api: Api) -> None:
    # GIVEN a pipeline with three stages, probabilities as exact strings
    stages = [{"name": "Qualified", "probability": "0.2", "kind": "open"},
              {"name": "Proposal", "probability": "0.6250"},
              {"name": "Signed", "probability": "1", "kind": "won"}]

    # WHEN it is created
    reply = api.post("/v1/pipelines", {"name": "Partners", "stages": stages})

    # THEN it answers 201 with its location, first version and stages in the order given
    assert reply.status == 201, reply.raw
    pipeline = reply.json
    assert reply.header("Location") == f"/v1/pipelines/{pipeline['id']}" and reply.header("ETag") == '"v1"'
    assert pipeline["is_default"] is False and pipeline["archived_at"] is None
    assert [(s["name"], s["position"], s["probability"], s["kind"]) for s in pipeline["stages"]] == [
        ("Qualified", 0, "0.2", "open"), ("Proposal", 1, "0.625", "open"), ("Signed", 2, "1", "won")]
    # AND reading it back answers the same pipeline
    again = api.get(f"/v1/pipelines/{pipeline['id']}")
    assert again.status == 200 and again.json == pipeline and again.header("ETag") == '"v1"'


@pytest.mark.parametrize("body, field", [
    ({"name": "X", "stages": [{"name": "Won", "probability": "1", "kind": "won"}]}, "stages"),
    ({"name": "X", "stages": []}, "stages"),
    ({"name": "X", "stages": [{"name": "A", "probability": 0.5}]}, "stages.0.probability"),
    ({"name": "X", "stages": [{"name": "A", "probability": "1.5"}]}, "stages.0.probability"),
    ({"name": "X", "stages": [{"name": "A", "probability": "0.12345"}]}, "stages.0.probability"),
    ({"name": "X", "stages": [{"name": "A", "probability": "0.5", "kind": "pending"}]}, "stages.0.kind"),
    ({"name": "", "stages": [{"name": "A", "probability": "0.5"}]}, "name"),
    ({"name": "X", "stages": [{"name": "A", "probability": "0.5"}], "color": "red"}, "color"),
])
def test_create_refuses_invalid_pipelines_and_writes_nothing(api: Api, body: dict[str, Any], field: str) -> None:
    # GIVEN the workspace as it is
    before = written(api)

    # WHEN an invalid pipeline is posted
    reply = api.post("/v1/pipelines", body)

    # THEN 422 names the field at fault, and nothing was written
    assert field in error_fields(assert_problem(reply, 422))
    assert written(api) == before


def test_list_pages_and_hides_archived_pipelines_unless_asked(api: Api) -> None:
    # GIVEN the default pipeline, two more, one of them archived
    first = default_pipeline(api)
    second, third = create_pipeline(api, "Second"), create_pipeline(api, "Third")
    assert api.delete(f"/v1/pipelines/{third['id']}").status == 204

    # WHEN listed one per page
    seen, cursor = [], None
    while True:
        reply = api.get("/v1/pipelines?limit=1" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200
        seen += [p["id"] for p in reply.json["data"]]
        cursor = reply.json["next_cursor"]
        if cursor is None:
            break

    # THEN the live ones come oldest first, each once; with include_archived the archived one too
    assert seen == [first["id"], second["id"]]
    everything = api.get("/v1/pipelines?include_archived=true").json["data"]
    assert [p["id"] for p in everything] == [first["id"], second["id"], third["id"]]
    # AND a cursor of one query is refused by the other
    paged = api.get("/v1/pipelines?limit=1").json["next_cursor"]
    assert_problem(api.get(f"/v1/pipelines?include_archived=true&cursor={paged}"), 422)


# ---- update, archive, restore --------------------------------------------------------------------------
def test_patch_renames_and_if_match_guards_the_version(api: Api) -> None:
    # GIVEN a pipeline at version 1
    pipeline = create_pipeline(api)

    # WHEN it is renamed with a stale If-Match THEN 412 and nothing changes
    assert_problem(api.patch(f"/v1/pipelines/{pipeline['id']}", {"name": "New"}, headers={"If-Match": '"v9"'}), 412)
    # WHEN it is renamed with the right one THEN it answers version 2
    reply = api.patch(f"/v1/pipelines/{pipeline['id']}", {"name": "New"}, headers={"If-Match": '"v1"'})
    assert reply.status == 200 and reply.json["name"] == "New" and reply.header("ETag") == '"v2"'
    # AND a null name or is_default false is refused
    assert_problem(api.patch(f"/v1/pipelines/{pipeline['id']}", {"name": None}), 422)
    assert_problem(api.patch(f"/v1/pipelines/{pipeline['id']}", {"is_default": False}), 422)


def test_making_a_pipeline_the_default_moves_the_flag(api: Api) -> None:
    # GIVEN the default pipeline and another
    old, new = default_pipeline(api), create_pipeline(api)

    # WHEN the other becomes the default
    reply = api.patch(f"/v1/pipelines/{new['id']}", {"is_default": True})

    # THEN it is the only default, and new deals land in its first open stage
    assert reply.status == 200 and reply.json["is_default"] is True
    assert api.get(f"/v1/pipelines/{old['id']}").json["is_default"] is False
    deal = api.post("/v1/deals", {"name": "Lands in the new default"}).json
    assert (deal["pipeline_id"], deal["stage_id"]) == (new["id"], new["stages"][0]["id"])


def test_archive_refuses_the_default_and_a_pipeline_holding_deals(api: Api) -> None:
    # GIVEN the default pipeline, and another holding one live deal
    default, other = default_pipeline(api), create_pipeline(api)
    deal = create_deal(api, other["stages"][0]["id"])

    # WHEN each is archived THEN both are 409
    assert_problem(api.delete(f"/v1/pipelines/{default['id']}"), 409)
    body = assert_problem(api.delete(f"/v1/pipelines/{other['id']}"), 409)
    assert body["deal_count"] == 1

    # WHEN the deal is archived THEN the pipeline can be archived (twice: a no-op), and restored
    assert api.delete(f"/v1/deals/{deal['id']}").status == 204
    assert api.delete(f"/v1/pipelines/{other['id']}").status == 204
    assert api.delete(f"/v1/pipelines/{other['id']}").status == 204
    assert_problem(api.get(f"/v1/pipelines/{other['id']}"), 404)
    assert api.get(f"/v1/pipelines/{other['id']}?include_archived=true").json["archived_at"] is not None
    # AND no deal can be created in it while archived
    assert "pipeline_id" in error_fields(assert_problem(
        api.post("/v1/deals", {"name": "X", "pipeline_id": other["id"]}), 422))
    restored = api.post(f"/v1/pipelines/{other['id']}/restore")
    assert restored.status == 200 and restored.json["archived_at"] is None
    assert [e for e, rid in written(api).events if rid == other["id"]] == [
        "pipeline.created", "pipeline.archived", "pipeline.restored"]


# ---- stages -------------------------------------------------------------------------------------------
def test_add_a_stage_at_a_position_or_last(api: Api) -> None:
    # GIVEN a pipeline New, Won, Lost
    pipeline = create_pipeline(api)

    # WHEN a stage is added at position 1, then one without a position
    middle = api.post(f"/v1/pipelines/{pipeline['id']}/stages", {"name": "Demo", "probability": "0.5", "position": 1})
    last = api.post(f"/v1/pipelines/{pipeline['id']}/stages", {"name": "Parked", "probability": "0"})

    # THEN each answers 201 with the whole pipeline, its stages renumbered, its version moved on
    assert middle.status == 201 and last.status == 201
    assert [s["name"] for s in middle.json["stages"]] == ["New", "Demo", "Won", "Lost"]
    assert [(s["name"], s["position"], s["kind"]) for s in last.json["stages"]] == [
        ("New", 0, "open"), ("Demo", 1, "open"), ("Won", 2, "won"), ("Lost", 3, "lost"), ("Parked", 4, "open")]
    assert (middle.header("ETag"), last.header("ETag")) == ('"v2"', '"v3"')
    # AND an invalid stage is refused
    assert "probability" in error_fields(assert_problem(
        api.post(f"/v1/pipelines/{pipeline['id']}/stages", {"name": "Bad", "probability": 0.3}), 422))


def test_update_a_stage_name_probability_and_kind(api: Api) -> None:
    # GIVEN a pipeline with an empty open stage next to New
    pipeline = create_pipeline(api, stages=[*THREE_STAGES, {"name": "Parked", "probability": "0"}])
    parked = pipeline["stages"][3]["id"]

    # WHEN it is renamed, given an exact probability and made a lost stage
    reply = api.patch(f"/v1/pipelines/{pipeline['id']}/stages/{parked}",
                      {"name": "On hold", "probability": "0.0500", "kind": "lost"})

    # THEN the pipeline answers the stage changed
    assert reply.status == 200, reply.raw
    assert reply.json["stages"][3] == {"id": parked, "name": "On hold", "position": 3, "probability": "0.05",
                                       "kind": "lost"}
    # AND null values and an unknown stage are refused
    assert_problem(api.patch(f"/v1/pipelines/{pipeline['id']}/stages/{parked}", {"name": None}), 422)
    assert_problem(api.patch(f"/v1/pipelines/{pipeline['id']}/stages/{pipeline['id']}", {"name": "X"}), 404)


def test_a_stage_kind_cannot_change_while_it_holds_deals_nor_leave_no_open_stage(api: Api) -> None:
    # GIVEN a pipeline whose only open stage holds a deal
    pipeline = create_pipeline(api)
    new = pipeline["stages"][0]["id"]
    create_deal(api, new)

    # WHEN its kind is changed THEN 409 names how many deals it holds
    assert assert_problem(api.patch(f"/v1/pipelines/{pipeline['id']}/stages/{new}", {"kind": "won"}),
                          409)["deal_count"] == 1
    # AND an empty pipeline's only open stage cannot stop being open
    empty = create_pipeline(api, "Empty")
    body = assert_problem(api.patch(f"/v1/pipelines/{empty['id']}/stages/{empty['stages'][0]['id']}",
                                    {"kind": "won"}), 422)
    assert error_fields(body) == {"kind"}
    # AND both stages are still open
    for pipeline_id in (pipeline["id"], empty["id"]):
        assert api.get(f"/v1/pipelines/{pipeline_id}").json["stages"][0]["kind"] == "open"


def test_reorder_puts_the_stages_in_the_order_given(api: Api) -> None:
    # GIVEN a pipeline New, Won, Lost
    pipeline = create_pipeline(api)
    new, won, lost = stage_ids(pipeline)

    # WHEN reordered Lost, New, Won
    reply = api.post(f"/v1/pipelines/{pipeline['id']}/stages/reorder", {"stage_ids": [lost, new, won]})

    # THEN the stages come in that order, numbered from 0
    assert reply.status == 200
    assert [(s["id"], s["position"]) for s in reply.json["stages"]] == [(lost, 0), (new, 1), (won, 2)]
    assert api.get(f"/v1/pipelines/{pipeline['id']}").json == reply.json


@pytest.mark.parametrize("wanted", ["missing", "repeated", "foreign"])
def test_reorder_refuses_anything_but_every_stage_once(api: Api, wanted: str) -> None:
    # GIVEN a pipeline, and the default pipeline's stages (another pipeline)
    pipeline = create_pipeline(api)
    new, won, lost = stage_ids(pipeline)
    order = {"missing": [new, won], "repeated": [new, won, lost, lost],
             "foreign": [new, won, default_pipeline(api)["stages"][0]["id"]]}[wanted]
    before = written(api)

    # WHEN reordered with a list that is not a permutation of its stages
    reply = api.post(f"/v1/pipelines/{pipeline['id']}/stages/reorder", {"stage_ids": order})

    # THEN 422 on stage_ids, and nothing moved
    assert error_fields(assert_problem(reply, 422)) == {"stage_ids"}
    assert written(api) == before


def test_removing_an_empty_stage_renumbers_the_rest(api: Api) -> None:
    # GIVEN a pipeline New, Demo, Won, Lost with no deal in Demo
    pipeline = create_pipeline(api, stages=[THREE_STAGES[0], {"name": "Demo", "probability": "0.5"},
                                            *THREE_STAGES[1:]])
    demo = pipeline["stages"][1]["id"]

    # WHEN Demo is removed
    reply = api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{demo}")

    # THEN the pipeline answers without it, positions renumbered, and deals cannot enter it any more
    assert reply.status == 200, reply.raw
    assert [(s["name"], s["position"]) for s in reply.json["stages"]] == [("New", 0), ("Won", 1), ("Lost", 2)]
    assert "stage_id" in error_fields(assert_problem(api.post("/v1/deals", {"name": "X", "stage_id": demo}), 422))
    assert_problem(api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{demo}"), 404)


def test_removing_a_stage_that_holds_deals_needs_a_destination_and_writes_nothing_without(api: Api) -> None:
    # GIVEN a stage holding two deals (one archived)
    pipeline = create_pipeline(api, stages=[THREE_STAGES[0], {"name": "Demo", "probability": "0.5"},
                                            *THREE_STAGES[1:]])
    demo = pipeline["stages"][1]["id"]
    create_deal(api, demo)
    archived = create_deal(api, demo)
    assert api.delete(f"/v1/deals/{archived['id']}").status == 204
    before = written(api)

    # WHEN it is removed without move_deals_to
    reply = api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{demo}")

    # THEN 409 names how many deals it holds, and nothing changed
    body = assert_problem(reply, 409)
    assert body["deal_count"] == 2 and "move_deals_to" in body["detail"]
    assert written(api) == before


def test_removing_a_stage_moves_its_deals_and_records_each_move(api: Api) -> None:
    # GIVEN a stage Demo holding a live deal and an archived one, and an open stage New
    pipeline = create_pipeline(api, stages=[THREE_STAGES[0], {"name": "Demo", "probability": "0.5"},
                                            *THREE_STAGES[1:]])
    new, demo = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    live, archived = create_deal(api, demo), create_deal(api, demo)
    assert api.delete(f"/v1/deals/{archived['id']}").status == 204
    before = written(api)

    # WHEN Demo is removed, its deals moving to New
    reply = api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{demo}?move_deals_to={new}")

    # THEN both deals are in New, each move is a stage change and a deal.stage_changed event
    assert reply.status == 200, reply.raw
    assert [s["id"] for s in reply.json["stages"]] == [new, pipeline["stages"][2]["id"], pipeline["stages"][3]["id"]]
    after = written(api)
    assert {d[0]: d[1] for d in after.deals} == {live["id"]: new, archived["id"]: new}
    assert after.stage_changes[len(before.stage_changes):] == sorted(
        [(live["id"], demo, new), (archived["id"], demo, new)])
    moved_events = after.events[len(before.events):]
    assert sorted(e for e in moved_events if e[0] == "deal.stage_changed") == sorted(
        [("deal.stage_changed", live["id"]), ("deal.stage_changed", archived["id"])])
    assert ("pipeline.updated", pipeline["id"]) in moved_events
    moved = api.get(f"/v1/deals/{live['id']}").json
    assert moved["stage_id"] == new and moved["stage_entered_at"] > live["stage_entered_at"]


@pytest.mark.parametrize("destination", ["same", "other_pipeline", "unknown"])
def test_move_deals_to_must_be_another_stage_of_the_pipeline(api: Api, destination: str) -> None:
    # GIVEN a stage holding a deal
    pipeline = create_pipeline(api)
    new = pipeline["stages"][0]["id"]
    create_deal(api, new)
    target = {"same": new, "other_pipeline": default_pipeline(api)["stages"][0]["id"],
              "unknown": "01JAAAAAAAAAAAAAAAAAAAAAAA"}[destination]
    before = written(api)

    # WHEN it is removed towards a stage that is not another of its pipeline's
    reply = api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{new}?move_deals_to={target}")

    # THEN 422 (New is the only open stage, or the destination is wrong) and nothing moved
    assert_problem(reply, 422)
    assert written(api) == before


def test_open_deals_cannot_be_moved_into_a_lost_stage_by_a_removal(api: Api) -> None:
    # GIVEN two open stages, the second holding a deal, and a lost stage
    pipeline = create_pipeline(api, stages=[THREE_STAGES[0], {"name": "Demo", "probability": "0.5"},
                                            *THREE_STAGES[1:]])
    demo, lost = pipeline["stages"][1]["id"], pipeline["stages"][3]["id"]
    create_deal(api, demo)
    before = written(api)

    # WHEN Demo is removed towards the lost stage
    reply = api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{demo}?move_deals_to={lost}")

    # THEN 422 (the deal has no lost reason), and nothing was half-moved
    assert error_fields(assert_problem(reply, 422)) == {"query.move_deals_to"}
    assert written(api) == before


def test_the_last_open_stage_cannot_be_removed(api: Api) -> None:
    pipeline = create_pipeline(api)
    body = assert_problem(api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{pipeline['stages'][0]['id']}"), 422)
    assert error_fields(body) == {"stage_id"}


# ---- permissions and tenancy -------------------------------------------------------------------------------
def test_read_only_keys_read_pipelines_but_cannot_change_them(api: Api) -> None:
    # GIVEN a read-only API key of the workspace
    key = api.post("/v1/api-keys", {"name": "reader", "scopes": ["read"]}).json["key"]
    reader = api.with_key(key)
    pipeline = default_pipeline(api)

    # WHEN it reads and writes THEN reads succeed and every write is 403
    assert reader.get("/v1/pipelines").status == 200
    assert reader.get(f"/v1/pipelines/{pipeline['id']}").status == 200
    assert_problem(reader.post("/v1/pipelines", {"name": "X", "stages": THREE_STAGES}), 403)
    assert_problem(reader.patch(f"/v1/pipelines/{pipeline['id']}", {"name": "X"}), 403)
    assert_problem(reader.post(f"/v1/pipelines/{pipeline['id']}/stages", {"name": "X", "probability": "0"}), 403)


def test_another_workspace_cannot_see_or_change_pipelines(api: Api, other_api: Api) -> None:
    # GIVEN a pipeline of the first workspace
    pipeline = create_pipeline(api)
    pid, stage = pipeline["id"], pipeline["stages"][0]["id"]
    before = written(api)

    # WHEN the other workspace lists, reads and writes it
    listed = [p["id"] for p in other_api.get("/v1/pipelines?include_archived=true").json["data"]]
    replies = [
        other_api.get(f"/v1/pipelines/{pid}"),
        other_api.patch(f"/v1/pipelines/{pid}", {"name": "Mine"}),
        other_api.delete(f"/v1/pipelines/{pid}"),
        other_api.post(f"/v1/pipelines/{pid}/restore"),
        other_api.post(f"/v1/pipelines/{pid}/stages", {"name": "X", "probability": "0"}),
        other_api.patch(f"/v1/pipelines/{pid}/stages/{stage}", {"name": "X"}),
        other_api.post(f"/v1/pipelines/{pid}/stages/reorder", {"stage_ids": stage_ids(pipeline)}),
        other_api.delete(f"/v1/pipelines/{pid}/stages/{stage}"),
    ]

    # THEN it does not see it, every request is 404, and nothing changed
    assert pid not in listed and len(listed) == 1
    for reply in replies:
        assert_problem(reply, 404)
    assert written(api) == before
    # AND it cannot create a deal in the first workspace's pipeline or stage
    assert_problem(other_api.post("/v1/deals", {"name": "X", "pipeline_id": pid}), 422)
    assert_problem(other_api.post("/v1/deals", {"name": "X", "stage_id": stage}), 422)
