"""Automations over HTTP and the jobs queue: rules act on events and schedules, every run is recorded
with its steps, loops stop, repeated failures pause a rule, failed runs retry, tenancy, bad input."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from functions.automations.models import AutomationRule, AutomationRun
from functions.webhooks.models import WebhookDelivery
from layers.db.uow import UnitOfWork
from layers.runtime.inline import InlineQueue
from shared.clock import utcnow
from shared.context import system_scope
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite

PROBLEM_JSON = "application/problem+json"
LEADS = {"filter_groups": [{"filters": [{"property": "lifecycle_stage", "operator": "EQ", "value": "lead"}]}]}


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def ok(reply: Reply) -> Any:
    assert reply.status == 200, reply.raw
    return reply.json


def rule(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"name": "Rule", "object_type": "contacts", "trigger": {"type": "record_created"},
            "actions": [{"type": "add_tag", "tag": "auto"}], **fields}
    return created(api.post("/v1/automations", body))


def contact(api: Api, **fields: Any) -> dict[str, Any]:
    return created(api.post("/v1/contacts", {"first_name": "Pat", **fields}))


def runs(api: Api, rule_id: str, query: str = "") -> list[dict[str, Any]]:
    return ok(api.get(f"/v1/automations/{rule_id}/runs{query}"))["data"]  # type: ignore[no-any-return]


def statuses(api: Api, rule_id: str) -> list[str]:
    return sorted(r["status"] for r in runs(api, rule_id))


def stored(api: Api) -> tuple[list[str], list[str]]:
    """Every rule and run id of the workspace, archived ones too."""
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return (list(uow.session.scalars(select(AutomationRule.id))),
                list(uow.session.scalars(select(AutomationRun.id))))


# ---- rules act on events --------------------------------------------------------------------------------
def test_a_created_contact_meeting_the_conditions_gets_a_linked_task_and_a_tag(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule: a new lead gets a call task for its owner in 2 days, and a tag
    automation = rule(api, conditions=LEADS, actions=[
        {"type": "create_task", "subject": "Call the lead", "due_in_days": 2, "owner": "record_owner"},
        {"type": "add_tag", "tag": "new-lead"}])

    # WHEN a lead is created and the jobs run
    lead = contact(api, lifecycle_stage="lead", owner_id=api.owner_user_id, tags=["imported"])
    jobs.run()

    # THEN one run succeeded, naming its trigger event and each step's result
    (run,) = runs(api, automation["id"])
    assert run["status"] == "succeeded" and run["error"] is None and run["attempt"] == 1
    assert run["trigger"]["type"] == "contact.created" and run["record_id"] == lead["id"]
    assert [(s["action"], s["status"]) for s in run["steps"]] == [("create_task", "ok"), ("add_tag", "ok")]
    # AND the task exists, assigned to the owner, linked to the contact and due in two days
    task = ok(api.get(f"/v1/activities/{run['steps'][0]['result']['task_id']}"))
    assert (task["kind"], task["subject"], task["owner_id"]) == ("task", "Call the lead", api.owner_user_id)
    assert task["links"]["contacts"] == [lead["id"]] and task["due_at"] > lead["created_at"]
    # AND the tag was added next to the existing one
    assert ok(api.get(f"/v1/contacts/{lead['id']}"))["tags"] == ["imported", "new-lead"]
    # AND the run is readable on its own, and the rule shows its last run
    assert ok(api.get(f"/v1/automations/{automation['id']}/runs/{run['id']}")) == run
    shown = ok(api.get(f"/v1/automations/{automation['id']}"))
    assert (shown["last_run_status"], shown["consecutive_failures"], shown["status"]) == ("succeeded", 0, "active")


def test_a_record_not_meeting_the_conditions_gets_a_skipped_run_and_no_effect(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule for new leads
    automation = rule(api, conditions=LEADS)

    # WHEN a customer is created
    customer = contact(api, lifecycle_stage="customer")
    jobs.run()

    # THEN the run is recorded as skipped (so "why did nothing happen?" has an answer) and nothing changed
    (run,) = runs(api, automation["id"])
    assert run["status"] == "skipped" and run["steps"] == [] and "conditions" in run["detail"]
    assert ok(api.get(f"/v1/contacts/{customer['id']}"))["tags"] == []
    # AND skipped runs are filterable
    assert runs(api, automation["id"], "?status=succeeded") == []
    assert [r["id"] for r in runs(api, automation["id"], "?status=skipped")] == [run["id"]]


def test_field_changed_runs_only_when_that_field_changed(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule: when a contact's job title changes, make them qualified
    automation = rule(api, trigger={"type": "field_changed", "field": "job_title"},
                      actions=[{"type": "update_field", "field": "lifecycle_stage", "value": "qualified"}])
    person = contact(api)
    jobs.run()

    # WHEN another field changes, then the job title
    api.patch(f"/v1/contacts/{person['id']}", {"last_name": "Lee"})
    jobs.run()
    assert runs(api, automation["id"]) == []
    api.patch(f"/v1/contacts/{person['id']}", {"job_title": "CTO"})
    jobs.run()

    # THEN one run updated the field, and the contact shows it
    (run,) = runs(api, automation["id"])
    assert run["status"] == "succeeded" and run["steps"][0]["result"]["field"] == "lifecycle_stage"
    assert ok(api.get(f"/v1/contacts/{person['id']}"))["lifecycle_stage"] == "qualified"


def test_deal_stage_changed_into_a_stage_tags_the_deal(api: Api, jobs: InlineQueue) -> None:
    # GIVEN the default pipeline and a rule on deals entering its second stage
    pipeline = next(p for p in ok(api.get("/v1/pipelines"))["data"] if p["is_default"])
    first, second = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    automation = rule(api, object_type="deals", trigger={"type": "deal_stage_changed", "to_stage_id": second},
                      actions=[{"type": "add_tag", "tag": "moving"}])
    deal = created(api.post("/v1/deals", {"name": "Acme", "stage_id": first}))
    jobs.run()
    assert runs(api, automation["id"]) == []  # entering the first stage is not the trigger

    # WHEN the deal moves to the second stage
    ok(api.patch(f"/v1/deals/{deal['id']}", {"stage_id": second}))
    jobs.run()

    # THEN the rule ran and the deal carries the tag
    assert statuses(api, automation["id"]) == ["succeeded"]
    assert ok(api.get(f"/v1/deals/{deal['id']}"))["tags"] == ["moving"]


# ---- loops ----------------------------------------------------------------------------------------------
def test_a_rule_retriggering_itself_is_stopped_and_the_queue_goes_quiet(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule: when a contact is updated, tag it (which updates it again)
    automation = rule(api, trigger={"type": "record_updated"}, actions=[{"type": "add_tag", "tag": "touched"}])
    person = contact(api)

    # WHEN the contact is updated and every job runs
    api.patch(f"/v1/contacts/{person['id']}", {"job_title": "CEO"})
    jobs.run()  # returns: the loop is stopped, not run until the queue's limit

    # THEN the first run acted and the one its own change caused was stopped, visibly
    assert statuses(api, automation["id"]) == ["loop_stopped", "succeeded"]
    stopped = runs(api, automation["id"], "?status=loop_stopped")[0]
    assert stopped["trigger"]["causation"] == [automation["id"]] and "loop" in stopped["detail"]
    assert ok(api.get(f"/v1/contacts/{person['id']}"))["tags"] == ["touched"]
    assert jobs.dead == []


def test_two_rules_triggering_each_other_are_stopped(api: Api, jobs: InlineQueue) -> None:
    # GIVEN rule A: job title changed → set last name; rule B: last name changed → set job title
    a = rule(api, name="A", trigger={"type": "field_changed", "field": "job_title"},
             actions=[{"type": "update_field", "field": "last_name", "value": "FromA"}])
    b = rule(api, name="B", trigger={"type": "field_changed", "field": "last_name"},
             actions=[{"type": "update_field", "field": "job_title", "value": "FromB"}])
    person = contact(api)

    # WHEN the job title changes
    api.patch(f"/v1/contacts/{person['id']}", {"job_title": "Start"})
    jobs.run()

    # THEN A ran, B ran, and A met again in its own chain was stopped
    assert statuses(api, a["id"]) == ["loop_stopped", "succeeded"]
    assert statuses(api, b["id"]) == ["succeeded"]
    stopped = runs(api, a["id"], "?status=loop_stopped")[0]
    assert stopped["trigger"]["causation"] == [a["id"], b["id"]]
    assert ok(api.get(f"/v1/contacts/{person['id']}"))["job_title"] == "FromB"


# ---- failures, pausing, retries -------------------------------------------------------------------------
FAILING = [{"type": "add_tag", "tag": "half-done"},
           {"type": "create_task", "subject": "Follow up", "owner": "record_owner"}]


def test_a_failing_action_rolls_the_run_back_and_records_the_failure(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule whose second action needs the record's owner
    automation = rule(api, actions=FAILING)

    # WHEN a contact without an owner is created
    person = contact(api)
    jobs.run()

    # THEN the run failed, naming the failing step and its error; the step after it never ran
    (run,) = runs(api, automation["id"])
    assert run["status"] == "failed" and "step 1 (create_task)" in run["error"] and "owner" in run["error"]
    assert [(s["action"], s["status"]) for s in run["steps"]] == [("add_tag", "ok"), ("create_task", "failed")]
    # AND nothing of the run was kept (the tag of the first step was rolled back)
    assert ok(api.get(f"/v1/contacts/{person['id']}"))["tags"] == []
    assert ok(api.get(f"/v1/automations/{automation['id']}"))["consecutive_failures"] == 1


def test_five_failures_in_a_row_pause_the_rule_visibly(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule that fails on contacts without an owner
    automation = rule(api, actions=FAILING)

    # WHEN six such contacts are created
    for _ in range(6):
        contact(api)
    jobs.run()

    # THEN five runs failed and the rule paused itself, saying why; the sixth contact met a paused rule
    assert statuses(api, automation["id"]) == ["failed"] * 5
    shown = ok(api.get(f"/v1/automations/{automation['id']}"))
    assert shown["status"] == "paused" and shown["consecutive_failures"] == 5
    assert shown["paused_reason"].startswith("failed 5 times in a row: step 1 (create_task)")
    assert [r["id"] for r in ok(api.get("/v1/automations?status=paused"))["data"]] == [automation["id"]]
    assert ok(api.get("/v1/automations?status=active"))["data"] == []

    # WHEN it is resumed
    resumed = ok(api.post(f"/v1/automations/{automation['id']}/resume"))

    # THEN it is active with a clean count
    assert (resumed["status"], resumed["paused_reason"], resumed["consecutive_failures"]) == ("active", None, 0)


def test_a_failed_run_retried_after_the_cause_is_fixed_succeeds(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a run that failed because the contact had no owner
    automation = rule(api, actions=FAILING)
    person = contact(api)
    jobs.run()
    (failed,) = runs(api, automation["id"])

    # WHEN the owner is set and the run is retried
    ok(api.patch(f"/v1/contacts/{person['id']}", {"owner_id": api.owner_user_id}))
    reply = api.post(f"/v1/automations/{automation['id']}/runs/{failed['id']}/retry")
    assert reply.status == 202, reply.raw
    assert reply.json["status"] == "retrying" and reply.json["attempt"] == 2
    jobs.run()

    # THEN the same run succeeded on its second attempt, keeping the first attempt's story
    run = ok(api.get(f"/v1/automations/{automation['id']}/runs/{failed['id']}"))
    assert (run["status"], run["attempt"], run["error"]) == ("succeeded", 2, None)
    assert [a["status"] for a in run["previous_attempts"]] == ["failed"]
    assert ok(api.get(f"/v1/contacts/{person['id']}"))["tags"] == ["half-done"]
    assert ok(api.get(f"/v1/activities/{run['steps'][1]['result']['task_id']}"))["owner_id"] == api.owner_user_id
    assert ok(api.get(f"/v1/automations/{automation['id']}"))["consecutive_failures"] == 0

    # AND a run that did not fail cannot be retried
    again = api.post(f"/v1/automations/{automation['id']}/runs/{failed['id']}/retry")
    assert again.status == 409 and again.header("Content-Type") == PROBLEM_JSON


def test_paused_rules_do_not_run(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a paused rule
    automation = rule(api)
    paused = ok(api.post(f"/v1/automations/{automation['id']}/pause"))
    assert (paused["status"], paused["paused_reason"]) == ("paused", "paused by an admin")

    # WHEN a contact is created
    person = contact(api)
    jobs.run()

    # THEN the rule did nothing
    assert runs(api, automation["id"]) == [] and ok(api.get(f"/v1/contacts/{person['id']}"))["tags"] == []


# ---- schedules ------------------------------------------------------------------------------------------
def test_a_schedule_rule_fires_through_the_schedule_handler_on_matching_records(
    api: Api, jobs: InlineQueue
) -> None:
    # GIVEN two leads, a customer and an hourly rule tagging leads
    leads = [contact(api, lifecycle_stage="lead")["id"] for _ in range(2)]
    customer = contact(api, lifecycle_stage="customer")["id"]
    automation = rule(api, trigger={"type": "schedule", "schedule": "rate(1 hour)"}, conditions=LEADS,
                      actions=[{"type": "add_tag", "tag": "nurture"}])
    assert automation["next_run_at"] > automation["created_at"]
    jobs.run()
    # AND its firing is due
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(AutomationRule).where(AutomationRule.id == automation["id"])
                            .values(next_run_at=utcnow() - timedelta(minutes=1)))
        uow.commit()

    # WHEN the schedule handler runs (twice: a second sweep finds nothing due)
    for _ in range(2):
        jobs.send(json.dumps({"handler": "automations_run_scheduled"}))
        jobs.run()

    # THEN each lead got a run and the tag, the customer did not, and the next firing is an hour on
    assert statuses(api, automation["id"]) == ["succeeded", "succeeded"]
    assert sorted(r["record_id"] for r in runs(api, automation["id"])) == sorted(leads)
    assert all(ok(api.get(f"/v1/contacts/{lead}"))["tags"] == ["nurture"] for lead in leads)
    assert ok(api.get(f"/v1/contacts/{customer}"))["tags"] == []
    shown = ok(api.get(f"/v1/automations/{automation['id']}"))
    assert shown["next_run_at"] > utcnow().isoformat()[:16]


# ---- dry runs -------------------------------------------------------------------------------------------
def test_a_dry_run_shows_what_the_actions_would_do_and_writes_nothing(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a lead and a rule for leads
    lead = contact(api, lifecycle_stage="lead", owner_id=api.owner_user_id)
    customer = contact(api, lifecycle_stage="customer")
    automation = rule(api, trigger={"type": "record_updated"}, conditions=LEADS, actions=[
        {"type": "add_tag", "tag": "vip"}, {"type": "create_task", "subject": "Call", "owner": "record_owner"}])

    # WHEN the rule is tested on the lead and on the customer
    tested = ok(api.post(f"/v1/automations/{automation['id']}/test", {"record_id": lead["id"]}))
    unmatched = ok(api.post(f"/v1/automations/{automation['id']}/test", {"record_id": customer["id"]}))
    jobs.run()

    # THEN the lead matched and each action says what it would do; the customer did not match
    assert tested["matched"] is True
    assert [(s["action"], s["status"]) for s in tested["steps"]] == [("add_tag", "ok"), ("create_task", "ok")]
    assert tested["steps"][0]["would"]["added"] is True
    assert unmatched == {"record_id": customer["id"], "matched": False, "steps": []}
    # AND nothing was written: no tag, no task, no run
    assert ok(api.get(f"/v1/contacts/{lead['id']}"))["tags"] == []
    assert ok(api.get("/v1/activities"))["data"] == []
    assert runs(api, automation["id"]) == []
    # AND an unknown record is a 404
    unknown = {"record_id": "01JAAAAAAAAAAAAAAAAAAAAAAA"}
    assert api.post(f"/v1/automations/{automation['id']}/test", unknown).status == 404


# ---- manage ---------------------------------------------------------------------------------------------
def test_edit_and_delete_a_rule(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule
    automation = rule(api)

    # WHEN it is renamed with a stale version, then with the current one
    stale = api.patch(f"/v1/automations/{automation['id']}", {"name": "Renamed"}, headers={"If-Match": '"v9"'})
    edited = api.patch(f"/v1/automations/{automation['id']}", {"name": "Renamed", "conditions": LEADS},
                       headers={"If-Match": '"v1"'})

    # THEN the stale edit is refused and the current one applied
    assert stale.status == 412
    assert ok(edited)["name"] == "Renamed" and edited.json["conditions"] == LEADS and edited.header("ETag") == '"v2"'

    # WHEN it is deleted
    assert api.delete(f"/v1/automations/{automation['id']}").status == 204

    # THEN it is gone and does not run any more
    assert api.get(f"/v1/automations/{automation['id']}").status == 404
    assert ok(api.get("/v1/automations"))["data"] == []
    contact(api, lifecycle_stage="lead")
    jobs.run()
    assert stored(api)[1] == []


def _reads(automation_id: str, run_id: str) -> list[str]:
    return ["/v1/automations", f"/v1/automations/{automation_id}", f"/v1/automations/{automation_id}/runs",
            f"/v1/automations/{automation_id}/runs/{run_id}"]


def test_rules_and_runs_are_for_admins_only_reading_included(
    api: Api, firebase_issuer: FirebaseTestIssuer, jobs: InlineQueue
) -> None:
    # GIVEN a rule with a run, a member, a viewer, an admin (people) and a read-only and a write API key
    automation = rule(api)
    contact(api)
    jobs.run()
    (run,) = runs(api, automation["id"])
    member, viewer = invite(api, firebase_issuer, "member"), invite(api, firebase_issuer, "viewer")
    admin = invite(api, firebase_issuer, "admin")
    keys = [api.with_key(created(api.post("/v1/api-keys", {"name": s, "scopes": [s]}))["key"])
            for s in ("read", "write")]

    for outsider in (member, viewer, *keys):
        # WHEN they read the rules, the rule, its runs and a run
        replies = [outsider.get(path) for path in _reads(automation["id"], run["id"])]

        # THEN each is a 403 problem+json, and they cannot manage rules either
        assert [r.status for r in replies] == [403] * 4, [r.raw for r in replies]
        assert {r.header("Content-Type") for r in replies} == {PROBLEM_JSON}
        assert outsider.post("/v1/automations", {"name": "x"}).status == 403
        assert outsider.post(f"/v1/automations/{automation['id']}/pause").status == 403

    # AND an admin (a person, as the admin key above) reads all of it
    for reader in (admin, api):
        assert [reader.get(path).status for path in _reads(automation["id"], run["id"])] == [200] * 4


def test_runs_are_paged_newest_first(api: Api, jobs: InlineQueue) -> None:
    # GIVEN three runs of a rule
    automation = rule(api)
    for _ in range(3):
        contact(api)
    jobs.run()

    # WHEN they are read two at a time
    first = ok(api.get(f"/v1/automations/{automation['id']}/runs?limit=2"))
    second = ok(api.get(f"/v1/automations/{automation['id']}/runs?limit=2&cursor={first['next_cursor']}"))

    # THEN the pages hold all three, newest first, without repeats
    ids = [r["id"] for r in first["data"] + second["data"]]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True) and second["next_cursor"] is None


# ---- tenancy --------------------------------------------------------------------------------------------
def test_another_workspace_neither_sees_nor_triggers_a_rule(api: Api, other_api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule in one workspace
    automation = rule(api)

    # WHEN the other workspace creates a contact and looks for the rule
    theirs = contact(other_api)
    jobs.run()

    # THEN the rule did not run, and the other workspace cannot see, change or retry it
    assert runs(api, automation["id"]) == []
    assert ok(other_api.get(f"/v1/contacts/{theirs['id']}"))["tags"] == []
    assert other_api.get(f"/v1/automations/{automation['id']}").status == 404
    assert other_api.get(f"/v1/automations/{automation['id']}/runs").status == 404
    assert other_api.post(f"/v1/automations/{automation['id']}/pause").status == 404
    assert other_api.patch(f"/v1/automations/{automation['id']}", {"name": "Mine"}).status == 404
    assert other_api.delete(f"/v1/automations/{automation['id']}").status == 404
    assert ok(other_api.get("/v1/automations"))["data"] == []
    # AND a rule cannot act on another workspace's record in a dry run
    assert api.post(f"/v1/automations/{automation['id']}/test", {"record_id": theirs["id"]}).status == 404


def _their_ids(other: Api) -> dict[str, str]:
    """Ids of another workspace's things a rule might name: a webhook, a pipeline and its stage, a member,
    a company, a contact, the workspace itself."""
    pipeline = next(p for p in ok(other.get("/v1/pipelines"))["data"] if p["is_default"])
    return {
        "webhook": created(other.post("/v1/webhooks", {"url": "http://127.0.0.1:9/x",
                                                       "event_types": ["team.*"]}))["id"],
        "pipeline": pipeline["id"], "stage": pipeline["stages"][1]["id"], "member": other.owner_user_id,
        "company": created(other.post("/v1/companies", {"name": "Theirs"}))["id"],
        "contact": contact(other)["id"], "workspace": other.workspace_id,
    }


CROSS_REFERENCES: list[tuple[str, dict[str, Any], str]] = [
    ("webhook", {"actions": [{"type": "send_webhook", "subscription_id": "{webhook}"}]}, "actions.0.subscription_id"),
    ("stage", {"object_type": "deals", "trigger": {"type": "deal_stage_changed", "to_stage_id": "{stage}"}},
     "trigger.to_stage_id"),
    ("stage", {"object_type": "deals", "trigger": {"type": "deal_stage_changed", "from_stage_id": "{stage}"}},
     "trigger.from_stage_id"),
    ("stage", {"object_type": "deals", "actions": [{"type": "update_field", "field": "stage_id", "value": "{stage}"}]},
     "actions.0.value"),
    ("pipeline", {"object_type": "deals", "actions": [
        {"type": "update_field", "field": "pipeline_id", "value": "{pipeline}"}]}, "actions.0.value"),
    ("member", {"actions": [{"type": "create_task", "subject": "Call", "owner": "{member}"}]}, "actions.0.owner"),
    ("member", {"actions": [{"type": "update_field", "field": "owner_id", "value": "{member}"}]}, "actions.0.value"),
    ("company", {"actions": [{"type": "update_field", "field": "company_id", "value": "{company}"}]},
     "actions.0.value"),
    ("contact", {"object_type": "deals", "actions": [
        {"type": "update_field", "field": "contact_ids", "value": ["{contact}"]}]}, "actions.0.value.0"),
    ("contact", {"object_type": "deals", "actions": [
        {"type": "update_field", "field": "primary_contact_id", "value": "{contact}"}]}, "actions.0.value"),
    ("company", {"conditions": {"filter_groups": [{"filters": [
        {"property": "company_id", "operator": "IN", "values": ["{company}"]}]}]}},
     "conditions.filter_groups.0.filters.0.values.0"),
    ("contact", {"conditions": {"filter_groups": [{"filters": [
        {"property": "id", "operator": "EQ", "value": "{contact}"}]}]}},
     "conditions.filter_groups.0.filters.0.value"),
    ("workspace", {"actions": [{"type": "enqueue_job", "handler": "webhooks_deliver",
                                "payload": {"workspace_id": "{workspace}", "delivery_id": "x"}}]},
     "actions.0.payload.workspace_id"),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("kind", "change", "field"), CROSS_REFERENCES,
                         ids=[f"{k}-{f}" for k, _, f in CROSS_REFERENCES])
def test_a_rule_naming_another_workspaces_thing_is_422_and_nothing_is_written(
    api: Api, other_api: Api, kind: str, change: dict[str, Any], field: str
) -> None:
    # GIVEN another workspace's webhook, pipeline, stage, member, company, contact and its own id
    theirs = _their_ids(other_api)
    body = {"name": "Rule", "object_type": "contacts", "trigger": {"type": "record_created"},
            "actions": [{"type": "add_tag", "tag": "auto"}], **_fill(change, theirs)}

    # WHEN a rule of this workspace names one of them
    reply = api.post("/v1/automations", body)

    # THEN 422 problem+json names the field holding the id, and no rule was stored
    assert reply.status == 422, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    assert [(e["field"], e["code"]) for e in reply.json["errors"]] == [(field, "reference")], reply.json
    assert reply.json["detail"].startswith(field)
    assert stored(api) == ([], [])

    # AND the same ids of this workspace are accepted (the check is about whose they are, not their shape)
    ours = _their_ids(api)
    assert api.post("/v1/automations", {**body, **_fill(change, ours)}).status == 201


def test_an_edit_naming_another_workspaces_webhook_or_a_missing_stage_is_422_and_changes_nothing(
    api: Api, other_api: Api
) -> None:
    # GIVEN a deal rule of this workspace, and another workspace's webhook
    hook = created(other_api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/x", "event_types": ["team.*"]}))
    automation = rule(api, object_type="deals")

    # WHEN it is edited to send to that webhook, to trigger on a stage nobody has, or both at once
    bad = [
        api.patch(f"/v1/automations/{automation['id']}",
                  {"actions": [{"type": "send_webhook", "subscription_id": hook["id"]}]}),
        api.patch(f"/v1/automations/{automation['id']}",
                  {"trigger": {"type": "deal_stage_changed", "to_stage_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"}}),
        api.patch(f"/v1/automations/{automation['id']}",
                  {"trigger": {"type": "deal_stage_changed", "to_stage_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"},
                   "actions": [{"type": "send_webhook", "subscription_id": hook["id"]}]}),
    ]

    # THEN each is a 422 naming every field at fault, and the rule is as it was
    assert [r.status for r in bad] == [422, 422, 422]
    assert [[e["field"] for e in r.json["errors"]] for r in bad] == [
        ["actions.0.subscription_id"], ["trigger.to_stage_id"], ["trigger.to_stage_id", "actions.0.subscription_id"]]
    assert ok(api.get(f"/v1/automations/{automation['id']}")) == automation


def test_a_stored_rule_enqueueing_a_job_for_another_workspace_fails_its_run(
    api: Api, other_api: Api, jobs: InlineQueue
) -> None:
    # GIVEN a rule stored before the check, its job's payload naming another workspace
    automation = rule(api, actions=[{"type": "enqueue_job", "handler": "webhooks_deliver", "payload": {}}])
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(AutomationRule).where(AutomationRule.id == automation["id"]).values(actions=[
            {"type": "enqueue_job", "handler": "webhooks_deliver",
             "payload": {"workspace_id": other_api.workspace_id, "delivery_id": "x"}}]))
        uow.commit()

    # WHEN the rule meets a contact
    contact(api)
    jobs.run()

    # THEN its run failed saying why, and no job was sent
    (run,) = runs(api, automation["id"])
    assert run["status"] == "failed" and "another workspace" in run["error"]
    assert "webhooks_deliver" not in [name for name, _ in jobs.done]


# ---- bad input ------------------------------------------------------------------------------------------
BAD_RULES = [
    ({"trigger": {"type": "record_deleted"}}, "trigger.type"),
    ({"trigger": {"type": "field_changed"}}, "trigger"),
    ({"trigger": {"type": "field_changed", "field": "shoe_size"}}, "trigger.field"),
    ({"trigger": {"type": "record_created", "schedule": "rate(1 hour)"}}, "trigger"),
    ({"trigger": {"type": "deal_stage_changed"}}, "trigger.type"),
    ({"trigger": {"type": "schedule", "schedule": "every tuesday"}}, "trigger.schedule"),
    ({"trigger": {"type": "schedule", "schedule": "cron(0 9 * * * *)"}}, "trigger.schedule"),
    ({"conditions": {"filter_groups": [{"filters": [{"property": "shoe_size", "operator": "EQ", "value": 1}]}]}},
     "conditions.filter_groups.0.filters.0.property"),
    ({"actions": []}, "actions"),
    ({"actions": [{"type": "delete_everything"}]}, "actions.0"),
    ({"actions": [{"type": "update_field", "field": "created_at", "value": "x"}]}, "actions.0.field"),
    ({"actions": [{"type": "update_field", "field": "email", "value": "not-an-email"}]}, "actions.0.email"),
    ({"actions": [{"type": "update_field", "field": "custom_fields.nope", "value": 1}]}, "custom_fields.nope"),
    ({"actions": [{"type": "create_task", "subject": "x", "owner": "01JAAAAAAAAAAAAAAAAAAAAAAA"}]}, "actions.0.owner"),
    ({"actions": [{"type": "enqueue_job", "handler": "Not A Handler"}]}, "actions.0.enqueue_job.handler"),
    ({"actions": [{"type": "enqueue_job", "handler": "nobody_knows_me"}]}, "actions.0.handler"),
    ({"actions": [{"type": "enqueue_job", "handler": "automations_evaluate"}]}, "actions.0.handler"),
    ({"object_type": "activities", "actions": [{"type": "add_tag", "tag": "x"}]}, "actions.0.type"),
    ({"object_type": "lead"}, "object_type"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_RULES, ids=[b[1] + str(i) for i, b in enumerate(BAD_RULES)])
def test_bad_rules_are_422_and_nothing_is_written(api: Api, change: dict[str, Any], field: str) -> None:
    # GIVEN an otherwise valid rule with one fault
    body = {"name": "Rule", "object_type": "contacts", "trigger": {"type": "record_created"},
            "actions": [{"type": "add_tag", "tag": "auto"}], **change}

    # WHEN it is created
    reply = api.post("/v1/automations", body)

    # THEN 422 problem+json names the fault, and no rule was stored
    assert reply.status == 422, reply.raw
    assert reply.header("Content-Type") == PROBLEM_JSON
    assert any(field in e["field"] for e in reply.json["errors"]), reply.json
    assert stored(api) == ([], [])


def test_bad_edits_are_422_and_leave_the_rule_as_it_was(api: Api) -> None:
    # GIVEN a rule
    automation = rule(api)

    # WHEN it is edited with a bad action, a null name, or an unknown query status
    bad = [api.patch(f"/v1/automations/{automation['id']}", {"actions": [{"type": "add_tag", "tag": " "}]}),
           api.patch(f"/v1/automations/{automation['id']}", {"name": None}),
           api.patch(f"/v1/automations/{automation['id']}", {"object_type": "deals"}),
           api.get("/v1/automations?status=sleeping"),
           api.get(f"/v1/automations/{automation['id']}/runs?status=fine"),
           api.post(f"/v1/automations/{automation['id']}/test", {})]

    # THEN each is a 422 and the rule is unchanged
    assert [r.status for r in bad] == [422] * len(bad)
    assert ok(api.get(f"/v1/automations/{automation['id']}")) == automation


# ---- webhooks and jobs ------------------------------------------------------------------------------------
def test_send_webhook_schedules_a_delivery_and_a_deleted_webhook_fails_the_run(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a webhook (for other events, so only the rule sends it contacts) and a rule sending to it
    hook = created(api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hooks", "event_types": ["team.created"]}))
    automation = rule(api, actions=[{"type": "send_webhook", "subscription_id": hook["id"]}])

    # WHEN a contact is created
    person = contact(api)
    jobs.run()

    # THEN the run succeeded with a delivery of the contact's event, made by the automation
    (run,) = runs(api, automation["id"])
    assert run["status"] == "succeeded"
    deliveries = ok(api.get(f"/v1/webhooks/{hook['id']}/deliveries"))["data"]
    assert [d["id"] for d in deliveries] == [run["steps"][0]["result"]["delivery_id"]]

    # WHEN the webhook is deleted and another contact is created
    assert api.delete(f"/v1/webhooks/{hook['id']}").status == 204
    contact(api)
    jobs.run()

    # THEN that run failed, saying the webhook is gone
    failed = runs(api, automation["id"], "?status=failed")[0]
    assert "webhook" in failed["error"] and failed["record_id"] != person["id"]
    # (the delivery to nowhere must not be retried into a later test's receiver)
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(WebhookDelivery).values(status="failed", next_attempt_at=None))
        uow.commit()


def test_enqueue_job_sends_the_named_job(api: Api, jobs: InlineQueue) -> None:
    # GIVEN a rule enqueueing a known job with a payload it cannot run (the job's own problem, not the rule's)
    automation = rule(api, actions=[{"type": "enqueue_job", "handler": "webhooks_deliver",
                                     "payload": {"workspace_id": api.workspace_id, "delivery_id": "none"}}])

    # WHEN a contact is created
    contact(api)
    jobs.run()

    # THEN the run names the job it sent, and the job ran
    (run,) = runs(api, automation["id"])
    assert run["status"] == "succeeded" and run["steps"][0]["result"]["handler"] == "webhooks_deliver"
    assert "webhooks_deliver" in [name for name, _ in jobs.done]

    # WHEN the handler disappears (a later release removed it) and the rule meets another contact
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        uow.session.execute(update(AutomationRule).where(AutomationRule.id == automation["id"])
                            .values(actions=[{"type": "enqueue_job", "handler": "gone_away", "payload": {}}]))
        uow.commit()
    contact(api)
    jobs.run()

    # THEN the run failed saying so, instead of a job dead-lettered where nobody looks
    failed = runs(api, automation["id"], "?status=failed")[0]
    assert "no job handler named 'gone_away'" in failed["error"] and jobs.dead == []
