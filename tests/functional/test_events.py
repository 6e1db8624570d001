"""The sample events in events/: one or more per route handler, each runnable like a Lambda invoke.

Files are named `<handler>_<case>.json`, where `<handler>` is the Chalice route view name. Events that
address one record carry the placeholder id below (a sample cannot know a real id): as they are, they
answer 404 (or 207 in a batch); the "realised" test swaps in a real record's id and expects success.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shared.ids import new_id
from tests.support.api import Api
from tests.support.firebase_keys import FirebaseTestIssuer
from tiers.cli import main
from tiers.invoke import invoke_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"
PLACEHOLDER = "01JAAAAAAAAAAAAAAAAAAAAAAA"
EVENT_KEYS = {"resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
              "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext", "body",
              "isBase64Encoded"}

# What each event answers as it is, run with a workspace's admin API key. Every file must be listed,
# so a new sample states what it is expected to do.
AS_IS: dict[str, int] = {
    "contacts_create_valid": 201,
    "contacts_create_invalid_email": 422,
    "contacts_create_unknown_field": 422,
    "contacts_create_malformed_json": 400,
    "contacts_list_first_page": 200,
    "contacts_search_filter_and_query": 200,
    "contacts_batch_create_two": 200,
    "contacts_batch_upsert_by_email": 200,
    "contacts_batch_update_by_id": 207,
    "contacts_batch_archive_by_id": 207,
    "contacts_get_by_id": 404,
    "contacts_update_by_id": 404,
    "contacts_archive_by_id": 404,
    "contacts_restore_by_id": 404,
    "contacts_history_by_id": 404,
    "companies_create_valid": 201,
    "companies_create_invalid_domain": 422,
    "companies_list_first_page": 200,
    "companies_search_filter_and_query": 200,
    "companies_batch_create_two": 200,
    "companies_batch_upsert_by_domain": 200,
    "companies_batch_update_by_id": 207,
    "companies_batch_archive_by_id": 207,
    "companies_get_by_id": 404,
    "companies_update_by_id": 404,
    "companies_archive_by_id": 404,
    "companies_restore_by_id": 404,
    "companies_history_by_id": 404,
    "contacts_list_for_company_by_id": 404,
    "system_health_ok": 200,
    "events_list_contact_events": 200,
    "events_list_bad_type": 422,
    "events_get_by_id": 404,
    # Webhooks (placeholder ids answer 404; realised in tests/functional/test_webhooks_events.py).
    "webhooks_create_valid": 201,
    "webhooks_create_private_url": 422,
    "webhooks_create_filtered": 201,
    "webhooks_list_first_page": 200,
    "webhooks_get_by_id": 404,
    "webhooks_update_by_id": 404,
    "webhooks_delete_by_id": 404,
    "webhooks_rotate_secret_by_id": 404,
    "webhooks_deliveries_list_by_id": 404,
    "webhooks_deliveries_get_by_ids": 404,
    "webhooks_redeliver_by_id": 404,
    "webhooks_test_by_id": 404,
    # Imports and exports (placeholder ids answer 404; realised in tests/functional/test_imports*.py, test_exports*.py).
    "imports_create_awaiting_upload": 201,
    "imports_create_unknown_object": 422,
    "imports_list_first_page": 200,
    "imports_get_by_id": 404,
    "imports_preview_by_id": 404,
    "imports_preview_mapping_by_id": 404,
    "imports_commit_by_id": 404,
    "imports_cancel_by_id": 404,
    "exports_create_valid": 202,
    "exports_create_unknown_property": 422,
    "exports_list_first_page": 200,
    "exports_get_by_id": 404,
    # Automations (placeholder ids answer 404; realised in tests/functional/test_automations*.py).
    "automations_create_valid": 201,
    "automations_create_stage_trigger_on_contacts": 422,
    "automations_list_first_page": 200,
    "automations_list_paused": 200,
    "automations_get_by_id": 404,
    "automations_update_by_id": 404,
    "automations_delete_by_id": 404,
    "automations_pause_by_id": 404,
    "automations_resume_by_id": 404,
    "automations_runs_list_by_id": 404,
    "automations_runs_get_by_ids": 404,
    "automations_runs_retry_by_ids": 404,
    "automations_test_by_id": 404,
    "system_ready_ok": 200,
    "system_metrics_ok": 200,
    "system_openapi_document": 200,
    "system_docs_page": 200,
    "workspaces_members_list_first_page": 200,
    "workspaces_members_invite_valid": 201,
    "workspaces_members_change_role_by_id": 404,
    "workspaces_members_remove_by_id": 404,
    "workspaces_api_keys_create_valid": 201,
    "workspaces_api_keys_list_ok": 200,
    "workspaces_api_keys_revoke_by_id": 404,
    "workspaces_sessions_start_invalid_token": 401,
    # People-only endpoints refuse API keys; test_user_events_succeed_for_a_signed_in_person runs them as one.
    "workspaces_create_valid": 403,
    "workspaces_list_ok": 403,
    "workspaces_me_ok": 403,
    "workspaces_sessions_end_ok": 403,
    # Custom field definitions (admin writes; the sample key is an admin key).
    "fields_list_contacts": 200,
    "fields_create_valid": 201,
    "fields_create_unique_long_text": 422,
    "fields_get_by_id": 404,
    "fields_update_by_id": 404,
    "fields_archive_by_id": 404,
    "fields_restore_by_id": 404,
    # Associations and merges; the two-id events are realised in tests/functional/test_associations.py
    # and test_merges.py (each names a second record, 01JBBBBBBBBBBBBBBBBBBBBBBB).
    "associations_list_contacts_by_id": 404,
    "associations_list_companies_by_id": 404,
    "associations_list_deals_by_id": 404,
    "associations_create_contacts_labelled": 404,
    "associations_create_companies_labelled": 404,
    "associations_create_deals_labelled": 404,
    "associations_remove_contacts_by_ids": 404,
    "associations_remove_companies_by_ids": 404,
    "associations_remove_deals_by_ids": 404,
    "associations_batch_create_two": 207,
    "associations_batch_archive_by_ids": 207,
    "merges_duplicates_contacts_first_page": 200,
    "merges_duplicates_companies_first_page": 200,
    "merges_merge_contacts_by_ids": 404,
    "merges_merge_companies_by_ids": 404,
    "merges_merge_contacts_same_record": 422,
    "merges_list_contacts": 200,
    "merges_get_by_id": 404,
    "merges_undo_by_id": 404,
    # Pipelines and deals (deals_create_valid lands in the default pipeline every new workspace has).
    "pipelines_list_first_page": 200,
    "pipelines_create_valid": 201,
    "pipelines_create_no_open_stage": 422,
    "pipelines_get_by_id": 404,
    "pipelines_update_by_id": 404,
    "pipelines_archive_by_id": 404,
    "pipelines_restore_by_id": 404,
    "pipelines_stages_add_by_id": 404,
    "pipelines_stages_reorder_by_id": 404,
    "pipelines_stages_update_by_ids": 404,
    "pipelines_stages_delete_by_ids": 404,
    "deals_create_valid": 201,
    "deals_create_float_amount": 422,
    "deals_list_first_page": 200,
    "deals_search_filter_and_query": 200,
    "deals_batch_create_two": 200,
    "deals_batch_update_by_id": 207,
    "deals_batch_upsert_unsupported": 207,
    "deals_batch_archive_by_id": 207,
    "deals_get_by_id": 404,
    "deals_update_by_id": 404,
    "deals_archive_by_id": 404,
    "deals_restore_by_id": 404,
    "deals_history_by_id": 404,
    "deals_move_stage_by_id": 404,
    "deals_stage_changes_by_id": 404,
    "deals_board_by_id": 404,
    "deals_board_stage_by_ids": 404,
    # Workspace settings, teams (the two-id member events are realised in test_teams.py) and reports.
    "workspaces_settings_get_ok": 200,
    "workspaces_settings_update_restrict_visibility": 200,
    "workspaces_settings_update_invalid": 422,
    "workspaces_teams_list_first_page": 200,
    "workspaces_teams_create_valid": 201,
    "workspaces_teams_create_invalid_name": 422,
    "workspaces_teams_get_by_id": 404,
    "workspaces_teams_update_by_id": 404,
    "workspaces_teams_delete_by_id": 404,
    "workspaces_teams_members_add_by_ids": 404,
    "workspaces_teams_members_remove_by_ids": 404,
    "reports_pipeline_summary_default_pipeline": 200,
    "reports_pipeline_summary_by_id": 404,
    "reports_forecast_next_quarter": 200,
    "reports_forecast_reversed_range": 422,
    "reports_win_rate_last_90_days": 200,
    "reports_win_rate_first_half": 200,
    "reports_activities_one_month": 200,
    # Activities: the id events are realised on a task (so complete/reopen apply); the timeline ones on
    # a record of their type. API keys must name whose tasks "mine" are.
    "activities_create_valid": 201,
    "activities_create_task_without_subject": 422,
    "activities_create_note_with_task_fields": 422,
    "activities_list_first_page": 200,
    "activities_search_open_calls": 200,
    "activities_batch_create_two": 200,
    "activities_batch_update_by_id": 207,
    "activities_batch_upsert_refused": 422,
    "activities_batch_archive_by_id": 207,
    "activities_get_by_id": 404,
    "activities_update_by_id": 404,
    "activities_archive_by_id": 404,
    "activities_restore_by_id": 404,
    "activities_history_by_id": 404,
    "activities_complete_by_id": 404,
    "activities_reopen_by_id": 404,
    "activities_tasks_mine_for_owner": 200,
    "activities_tasks_mine_without_owner": 422,
    "activities_tasks_overdue_all": 200,
    "activities_timeline_contacts_by_id": 404,
    "activities_timeline_companies_by_id": 404,
    "activities_timeline_deals_by_id": 404,
    "contacts_viewers_by_id": 404,
    "companies_viewers_by_id": 404,
    "deals_viewers_by_id": 404,
    "ai_summaries_create_unknown_contact": 404,
    "ai_lead_scores_create_unknown_contact": 404,
    "ai_next_actions_create_unknown_deal": 404,
    "ai_email_drafts_create_unknown_contact": 404,
    "ai_searches_create_leads_tagged": 200,
    "ai_runs_list_first_page": 200,
    "ai_runs_get_by_id": 404,
    "ai_runs_apply_by_id": 404,
    "ai_settings_get_current": 200,
    "ai_settings_put_local_only": 200,
    "ai_usage_get_this_month": 200,
}

# Placeholder events with a real record's id swapped in.
REALISED: dict[str, int] = {
    "contacts_get_by_id": 200,
    "contacts_update_by_id": 200,
    "contacts_archive_by_id": 204,
    "contacts_restore_by_id": 200,
    "contacts_history_by_id": 200,
    "contacts_viewers_by_id": 200,
    "contacts_batch_update_by_id": 200,
    "contacts_batch_archive_by_id": 200,
    "companies_get_by_id": 200,
    "companies_update_by_id": 200,
    "companies_archive_by_id": 204,
    "companies_restore_by_id": 200,
    "companies_history_by_id": 200,
    "companies_batch_update_by_id": 200,
    "companies_batch_archive_by_id": 200,
    "contacts_list_for_company_by_id": 200,
    "workspaces_members_change_role_by_id": 200,
    "workspaces_members_remove_by_id": 204,
    "workspaces_api_keys_revoke_by_id": 204,
    "fields_get_by_id": 200,
    "fields_update_by_id": 200,
    "fields_archive_by_id": 204,
    "fields_restore_by_id": 200,
    "associations_list_contacts_by_id": 200,
    "associations_list_companies_by_id": 200,
    "pipelines_get_by_id": 200,
    "pipelines_update_by_id": 200,
    "pipelines_archive_by_id": 204,
    "pipelines_restore_by_id": 200,
    "pipelines_stages_add_by_id": 201,
    "deals_board_by_id": 200,
    "deals_get_by_id": 200,
    "deals_update_by_id": 200,
    "deals_archive_by_id": 204,
    "deals_restore_by_id": 200,
    "deals_history_by_id": 200,
    "deals_stage_changes_by_id": 200,
    "deals_batch_update_by_id": 200,
    "deals_batch_archive_by_id": 200,
    "workspaces_teams_get_by_id": 200,
    "workspaces_teams_update_by_id": 200,
    "workspaces_teams_delete_by_id": 204,
    "reports_pipeline_summary_by_id": 200,
    "activities_get_by_id": 200,
    "activities_update_by_id": 200,
    "activities_archive_by_id": 204,
    "activities_restore_by_id": 200,
    "activities_history_by_id": 200,
    "activities_complete_by_id": 200,
    "activities_reopen_by_id": 200,
    "activities_batch_update_by_id": 200,
    "activities_batch_archive_by_id": 200,
    "activities_timeline_contacts_by_id": 200,
    "activities_timeline_companies_by_id": 200,
    "activities_timeline_deals_by_id": 200,
}

AS_USER: dict[str, int] = {"workspaces_create_valid": 201, "workspaces_list_ok": 200, "workspaces_me_ok": 200,
                           "workspaces_sessions_end_ok": 204}


def _routes() -> dict[str, tuple[str, str]]:
    """view name → (path template, method), from the app's route table."""
    import app

    return {entry.view_name: (path, method) for path, methods in app.app.routes.items()
            for method, entry in methods.items()}


ROUTES = _routes()


def _is_route_event(path: Path) -> bool:
    """Job and schedule handlers' samples are checked in test_job_events.py."""
    import app
    from layers.runtime.dispatch import handler_kinds

    return not any(path.stem.startswith(name + "_") for name in handler_kinds(app.app))


EVENT_FILES = sorted(p for p in EVENTS.glob("*.json") if _is_route_event(p))


def handler_of(event_file: Path) -> str:
    """`contacts_batch_create_two.json` → `contacts_batch_create` (the longest view name it starts with)."""
    stem = event_file.stem
    names = [name for name in ROUTES if stem.startswith(name + "_")]
    assert names, f"{event_file.name} does not start with a route handler's name"
    return max(names, key=len)


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def run(name: str, api_key: str, event: dict[str, Any] | None = None, *, ids: tuple[str, ...] = ()) -> dict[str, Any]:
    path = EVENTS / f"{name}.json"
    result = invoke_handler(handler_of(path), event if event is not None else load(name), api_key=api_key, ids=ids)
    assert isinstance(result, dict)
    return result


def test_every_route_handler_has_a_sample_event() -> None:
    # GIVEN the app's route handlers and the sample events
    covered = {handler_of(f) for f in EVENT_FILES}

    # WHEN they are compared
    missing = sorted(set(ROUTES) - covered)

    # THEN every handler has at least one event
    assert missing == []


def test_every_event_file_has_a_stated_expectation() -> None:
    # GIVEN the sample event files
    names = {f.stem for f in EVENT_FILES}

    # WHEN they are compared with the expectations
    # THEN each one is expected to do something, and nothing is expected of a missing file
    assert names == set(AS_IS)
    assert set(REALISED) <= names and set(AS_USER) <= names


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=lambda f: f.stem)
def test_each_event_is_an_api_gateway_proxy_event_for_its_handler(event_file: Path) -> None:
    # GIVEN an event file
    event = json.loads(event_file.read_text())
    template, method = ROUTES[handler_of(event_file)]

    # WHEN its shape is checked
    context = event["requestContext"]

    # THEN it is a REST (v1) proxy event addressed to its own handler's route
    assert set(event) == EVENT_KEYS
    assert event["resource"] == context["resourcePath"] == template
    assert event["httpMethod"] == context["httpMethod"] == method
    assert event["path"] == context["path"]
    assert {"requestId", "stage", "identity"} <= set(context) and context["identity"]["sourceIp"]
    assert event["stageVariables"] is None and event["isBase64Encoded"] is False
    assert event["body"] is None or isinstance(event["body"], str)
    assert {k: [v] for k, v in event["headers"].items()} == event["multiValueHeaders"]
    params = event["pathParameters"] or {}
    filled = template
    for key, value in params.items():
        filled = filled.replace("{" + key + "}", value)
    assert filled == event["path"] and "{" not in filled
    query = event["queryStringParameters"]
    multi = event["multiValueQueryStringParameters"]
    assert (query is None and multi is None) or {k: [v] for k, v in query.items()} == multi
    if event["body"] is not None:
        assert event["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("name", sorted(AS_IS))
def test_each_event_runs_and_answers_its_expected_status(api: Api, name: str) -> None:
    # GIVEN a fresh workspace and its admin key
    # WHEN the event is invoked on its handler
    result = run(name, api.api_key)

    # THEN it answers the expected status (never a server error), with a request id
    assert result["statusCode"] == AS_IS[name], result.get("body")
    assert result["statusCode"] < 500
    headers = {k.lower(): v for k, v in result["headers"].items()}
    assert headers.get("x-request-id")
    if result["statusCode"] >= 400:
        assert headers["content-type"] == "application/problem+json"


def test_happy_path_events_answer_their_records(api: Api) -> None:
    # GIVEN the create, list and search events for contacts
    # WHEN they run in order in one workspace
    created = run("contacts_create_valid", api.api_key)
    listed = run("contacts_list_first_page", api.api_key)
    found = run("contacts_search_filter_and_query", api.api_key)

    # THEN the created contact is stored normalised, and the list and the search find it
    record = json.loads(created["body"])
    assert record["email"] == "ada.lovelace@example.com"
    assert [r["id"] for r in json.loads(listed["body"])["data"]] == [record["id"]]
    assert [r["id"] for r in json.loads(found["body"])["data"]] == [record["id"]]


def _real_id(api: Api, name: str) -> str:
    """An id of the kind the event's placeholder stands for, in the api's workspace."""
    handler = handler_of(EVENTS / f"{name}.json")
    if handler == "associations_list_contacts":
        handler = "contacts_get"
    elif handler == "associations_list_companies":
        handler = "companies_get"
    elif handler.startswith("activities_timeline_"):  # a record of the timeline's type
        handler = handler.removeprefix("activities_timeline_") + "_get"
    elif handler.startswith("activities_"):
        reply = api.post("/v1/activities", {"kind": "task", "subject": "Real", "owner_id": api.owner_user_id})
        assert reply.status == 201, reply.raw
        return str(reply.json["id"])
    if handler.startswith("pipelines_") or handler == "deals_board":
        reply = api.post("/v1/pipelines", {"name": "Real", "stages": [{"name": "Open", "probability": "0.5"}]})
    elif handler.startswith("deals_"):
        reply = api.post("/v1/deals", {"name": "Real", "amount": "100.00", "currency": "USD"})
    elif handler.startswith("companies_") or handler == "contacts_list_for_company":
        reply = api.post("/v1/companies", {"name": "Real", "domain": "real.example"})
    elif handler.startswith("contacts_"):
        reply = api.post("/v1/contacts", {"first_name": "Real", "email": "real@example.com"})
    elif handler in ("workspaces_members_change_role", "workspaces_members_remove"):
        reply = api.post("/v1/members", {"email": "member@example.com", "role": "member"})
        assert reply.status == 201, reply.raw
        return str(reply.json["user_id"])
    elif handler == "workspaces_api_keys_revoke":
        reply = api.post("/v1/api-keys", {"name": "to revoke", "scopes": ["read"]})
    elif handler.startswith("workspaces_teams_"):
        reply = api.post("/v1/teams", {"name": "Real"})
    elif handler == "reports_pipeline_summary":
        reply = api.post("/v1/pipelines", {"name": "Real", "stages": [{"name": "Open", "probability": "0.5"}]})
    elif handler.startswith("fields_"):
        reply = api.post("/v1/fields", {"object_type": "contacts", "key": "real", "label": "Real", "type": "text"})
    else:
        raise AssertionError(f"no real id for {name}")
    assert reply.status == 201, reply.raw
    return str(reply.json["id"])


@pytest.mark.parametrize("name", sorted(REALISED))
def test_placeholder_events_succeed_with_a_real_id(api: Api, name: str) -> None:
    # GIVEN an event addressing one record, and a real record's id
    assert PLACEHOLDER in (EVENTS / f"{name}.json").read_text()
    real_id = _real_id(api, name)

    # WHEN it is invoked with that id in place of the placeholder (what `crm invoke --id` does)
    result = run(name, api.api_key, ids=(real_id,))

    # THEN it succeeds
    assert result["statusCode"] == REALISED[name], result.get("body")
    if result["statusCode"] in (200, 207) and "batch" in name:
        assert all(r["outcome"] != "error" for r in json.loads(result["body"])["results"])


@pytest.mark.parametrize("name", sorted(AS_USER))
def test_user_events_succeed_for_a_signed_in_person(firebase_issuer: FirebaseTestIssuer, name: str) -> None:
    # GIVEN a person signed in with a Firebase ID token (sent where the API key would go)
    token = firebase_issuer.mint(f"uid-{new_id()}", email=f"person-{new_id().lower()}@example.com")

    # WHEN a people-only event is invoked with it
    result = invoke_handler(handler_of(EVENTS / f"{name}.json"), load(name), api_key=token)

    # THEN it succeeds
    assert result["statusCode"] == AS_USER[name], result.get("body")


def test_crm_invoke_runs_a_sample_event(api: Api) -> None:
    # GIVEN the contacts_create sample event and a workspace's API key
    event_file = EVENTS / "contacts_create_valid.json"

    # WHEN `crm invoke` runs it
    outcome = CliRunner().invoke(main, ["invoke", "contacts_create", "--event", str(event_file),
                                        "--api-key", api.api_key])

    # THEN it exits 0 and prints the Lambda-style result with the created contact
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    assert result["statusCode"] == 201
    record = json.loads(result["body"])
    assert record["email"] == "ada.lovelace@example.com"
    assert api.get(f"/v1/contacts/{record['id']}").json == record


def test_crm_invoke_exits_non_zero_for_an_unknown_handler(api: Api) -> None:
    # GIVEN a handler name the app does not have
    # WHEN `crm invoke` is asked to run it
    outcome = CliRunner().invoke(main, ["invoke", "contacts_frobnicate", "--event",
                                        str(EVENTS / "system_health_ok.json"), "--api-key", api.api_key])

    # THEN it fails, listing the handlers it knows
    assert outcome.exit_code != 0
    assert "contacts_create" in outcome.output


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["invoke", *args])


def test_crm_invoke_runs_a_by_id_sample_on_the_record_given_with_id(api: Api) -> None:
    # GIVEN a contact, and the contacts_get sample event (which names a placeholder id)
    contact = api.post("/v1/contacts", {"first_name": "Real", "email": "real@example.com"}).json

    # WHEN `crm invoke` runs the sample as it is, then with --id
    as_is = _invoke("contacts_get", "--event", str(EVENTS / "contacts_get_by_id.json"), "--api-key", api.api_key)
    with_id = _invoke("contacts_get", "--event", str(EVENTS / "contacts_get_by_id.json"), "--api-key", api.api_key,
                      "--id", contact["id"])

    # THEN as it is the placeholder is not found, and says how to fix that; with --id it answers the contact
    assert as_is.exit_code == 0 and json.loads(as_is.stdout)["statusCode"] == 404
    assert "pass a real one with --id" in as_is.stderr
    assert with_id.exit_code == 0, with_id.output
    result = json.loads(with_id.stdout)
    assert result["statusCode"] == 200 and json.loads(result["body"])["id"] == contact["id"]
    assert "placeholder" not in with_id.stderr


def test_crm_invoke_puts_a_second_id_in_place_of_the_second_placeholder(api: Api) -> None:
    # GIVEN a contact and a company, and the sample linking two records (01JAAA... to 01JBBB...)
    contact = api.post("/v1/contacts", {"first_name": "Real", "email": "real@example.com"}).json
    company = api.post("/v1/companies", {"name": "Real", "domain": "real.example"}).json

    # WHEN it is invoked with both ids
    sample = EVENTS / "associations_create_contacts_labelled.json"
    outcome = _invoke("associations_create_contacts", "--event", str(sample), "--api-key", api.api_key,
                      "--id", contact["id"], "--id", company["id"])

    # THEN the contact is linked to the company
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["statusCode"] in (200, 201)
    linked = api.get(f"/v1/contacts/{contact['id']}/associations/companies").json["data"]
    assert [link["to_id"] for link in linked] == [company["id"]]


@pytest.mark.parametrize(("handler", "event_name", "says"), [
    ("contacts_create", "companies_create_valid", "another route"),  # another route, same method
    ("contacts_get", "contacts_archive_by_id", "another route"),  # the same path, another method
    ("contacts_create", "webhooks_fanout_contact_created", "not an HTTP request"),  # a job's event
    ("webhooks_fanout", "contacts_create_valid", "is an HTTP request"),  # a job handler, an HTTP event
])
def test_crm_invoke_refuses_an_event_its_handler_does_not_take(api: Api, handler: str, event_name: str,
                                                              says: str) -> None:
    # GIVEN a handler and a sample event meant for another handler
    before = (api.get("/v1/contacts").json["data"], api.get("/v1/companies").json["data"])

    # WHEN `crm invoke` is asked to run the handler on it
    outcome = _invoke(handler, "--event", str(EVENTS / f"{event_name}.json"), "--api-key", api.api_key)

    # THEN it refuses with why and a non-zero exit, and nothing ran
    assert outcome.exit_code == 2, outcome.output
    assert says in outcome.stderr and "nothing ran" in outcome.stderr
    assert (api.get("/v1/contacts").json["data"], api.get("/v1/companies").json["data"]) == before


@pytest.mark.parametrize("ids", [("not-an-id",), (PLACEHOLDER, PLACEHOLDER, PLACEHOLDER)])
def test_crm_invoke_refuses_ids_it_cannot_place(api: Api, ids: tuple[str, ...]) -> None:
    # WHEN --id is not a record id, or more ids are given than a sample has placeholders
    args = [arg for given in ids for arg in ("--id", given)]
    outcome = _invoke("contacts_get", "--event", str(EVENTS / "contacts_get_by_id.json"), "--api-key", api.api_key,
                      *args)

    # THEN nothing runs and it says why
    assert outcome.exit_code == 2 and "nothing" not in outcome.stdout
    assert "record id" in outcome.stderr or "at most 2 ids" in outcome.stderr
