"""The local provider's rules: deterministic answers every AI feature can be shown working with, offline."""
from __future__ import annotations

from typing import Any

from functions.ai import local_rules
from functions.ai.schemas import (
    AIDraftEmailOutput,
    AILeadScoreOutput,
    AINextActionOutput,
    AISearchOutput,
    AISummaryOutput,
)
from layers.ai.types import AIRequest, RecordInput

TODAY = "2026-12-05"


def request(task: str, *records: RecordInput, question: str = "", **context: Any) -> AIRequest[Any]:
    return AIRequest(task=task, prompt_version=f"{task}/1", system_prompt="", output_schema=AISummaryOutput,
                     records=records, question=question, context={"today": TODAY, **context})


def note(item_id: str, at: str, body: str) -> dict[str, Any]:
    return {"id": item_id, "kind": "note", "at": at, "activity": {"kind": "note", "subject": None, "body": body}}


def change(item_id: str, at: str) -> dict[str, Any]:
    return {"id": item_id, "kind": "history", "at": at, "change": {"field": "job_title", "action": "updated"}}


def test_summary_cites_conversations_before_field_changes_newest_first() -> None:
    # GIVEN a timeline (newest first) with a change between two notes
    record = RecordInput("contacts", "c1", {"first_name": "Ada"}, [
        note("n2", "2026-12-04T10:00:00Z", "Sent offer"), change("h1", "2026-12-03T10:00:00Z"),
        note("n1", "2026-12-01T10:00:00Z", "Met")])
    # WHEN summarised
    out = AISummaryOutput.model_validate(local_rules.summary(request("summary", record)))
    # THEN the notes come first, each cited; the change after
    assert out.citations == ["n2", "n1", "h1"] and "Ada" in out.summary and "[n2]" in out.summary


def test_lead_score_explains_each_factor_and_stays_within_0_to_100() -> None:
    # GIVEN a senior customer at a business domain with recent notes, and a bare contact
    rich = RecordInput("contacts", "c1", {"job_title": "Chief Technology Officer", "lifecycle_stage": "customer",
                                          "email": "a@acme.io"},
                       [note(f"n{i}", "2026-12-01T00:00:00Z", "x") for i in range(9)])
    bare = RecordInput("contacts", "c2", {"email": "x@gmail.com"})
    # WHEN scored
    high = AILeadScoreOutput.model_validate(local_rules.lead_score(request("lead_score", rich)))
    low = AILeadScoreOutput.model_validate(local_rules.lead_score(request("lead_score", bare)))
    # THEN the senior customer scores the maximum, the bare one low, both with named factors and evidence
    assert high.score == 100 and low.score == 5
    assert {f.name for f in high.factors} == {"lifecycle_stage", "seniority", "recent_activity", "email_domain"}
    assert next(f for f in low.factors if f.name == "email_domain").weight == 0


def test_next_action_follows_the_deals_state() -> None:
    # GIVEN deals: quiet for 20 days, closing in 3 days, and closed
    quiet = RecordInput("deals", "d1", {"name": "A", "last_activity_at": "2026-11-15T00:00:00Z",
                                        "stage_entered_at": "2026-11-30T00:00:00Z"})
    closing = RecordInput("deals", "d2", {"name": "B", "expected_close_date": "2026-12-08",
                                          "last_activity_at": "2026-12-04T00:00:00Z"})
    closed = RecordInput("deals", "d3", {"name": "C", "closed_at": "2026-12-01T00:00:00Z"})
    # WHEN the next action is suggested
    actions = [AINextActionOutput.model_validate(local_rules.next_action(request("next_action", r)))
               for r in (quiet, closing, closed)]
    # THEN each fits its state, with a due date from today
    assert actions[0].title.startswith("Re-engage") and actions[0].priority == "high"
    assert actions[1].title.startswith("Confirm the close") and str(actions[1].due_date) == "2026-12-06"
    assert actions[2].priority == "low"


def test_draft_email_uses_name_company_and_last_activity() -> None:
    record = RecordInput("contacts", "c1", {"first_name": "Ada"}, [note("n1", "2026-12-01T00:00:00Z", "Pricing")])
    company = RecordInput("companies", "k1", {"name": "Acme"})
    out = AIDraftEmailOutput.model_validate(local_rules.draft_email(request("draft_email", record, company)))
    assert out.body.startswith("Hi Ada") and "Acme" in out.body and "Pricing" in out.subject


def test_nl_search_parses_titles_periods_tags_and_places() -> None:
    # GIVEN questions in plain English
    ctos = AISearchOutput.model_validate(local_rules.nl_search(request(
        "nl_search", question="CTOs at companies in Berlin created this month", city_fields=["custom_fields.city"])))
    vips = AISearchOutput.model_validate(local_rules.nl_search(request("nl_search", question="leads tagged vip")))
    deals = AISearchOutput.model_validate(local_rules.nl_search(request("nl_search", question="deals created today")))
    # THEN each becomes filter groups of the search language
    filters = {(f.property, f.operator, str(f.value)) for f in ctos.filter_groups[0].filters}
    assert filters == {("job_title", "CONTAINS_TOKEN", "CTO"), ("created_at", "GTE", "2026-12-01T00:00:00Z"),
                       ("custom_fields.city", "EQ", "Berlin")}
    lead_filters = vips.filter_groups[0].filters
    assert [(f.property, f.values or f.value) for f in lead_filters] == [("lifecycle_stage", ["lead"]), ("tags", "vip")]
    assert deals.object_type == "deals" and deals.filter_groups[0].filters[0].value == "2026-12-05T00:00:00Z"


def test_every_task_has_a_rule() -> None:
    from functions.ai.service import TASKS

    assert set(local_rules.RULES) == set(TASKS)
