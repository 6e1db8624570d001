"""Kind rules of activities: fields per kind, required fields, defaults, timeline position, links, merging."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.activities import rules
from shared.errors import ValidationFailed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=2)
EARLIER = NOW - timedelta(days=2)
PERSON = "01JPERSON0000000000000000A"


def create(**values: Any) -> dict[str, Any]:
    return rules.check_create(values, now=NOW, default_owner_id=PERSON)


def fields_at_fault(error: ValidationFailed) -> dict[str, str]:
    return {e["field"]: e["code"] for e in error.errors or []}


@pytest.mark.parametrize(("values", "occurred_at"), [
    pytest.param({"kind": "note", "body": "hi"}, None, id="note-at-creation"),
    pytest.param({"kind": "task", "subject": "call back"}, None, id="undated-task-at-creation"),
    pytest.param({"kind": "task", "subject": "call back", "due_at": LATER}, LATER, id="task-at-due"),
    pytest.param({"kind": "call", "starts_at": EARLIER}, EARLIER, id="call-at-start"),
    pytest.param({"kind": "meeting", "starts_at": LATER}, LATER, id="meeting-at-start"),
    pytest.param({"kind": "call"}, NOW, id="call-defaults-to-now"),
    pytest.param({"kind": "email", "direction": "inbound", "sent_at": EARLIER}, EARLIER, id="email-at-sent"),
    pytest.param({"kind": "email", "direction": "outbound"}, NOW, id="email-defaults-to-now"),
])
def test_occurred_at_derives_from_the_kind(values: dict[str, Any], occurred_at: datetime | None) -> None:
    # GIVEN a valid new activity of some kind
    # WHEN it is checked
    checked = create(**values)

    # THEN its timeline position follows its kind (None: the creation time, stamped by the service)
    assert checked["occurred_at"] == occurred_at
    assert "sent_at" not in checked


def test_a_task_gets_normal_priority_and_the_person_as_assignee() -> None:
    # GIVEN a task without priority or owner, created by a person
    # WHEN it is checked
    checked = create(kind="task", subject="follow up")

    # THEN it is assigned to that person with normal priority
    assert checked["owner_id"] == PERSON and checked["priority"] == "normal"


def test_a_task_from_an_api_key_must_name_its_assignee() -> None:
    # GIVEN a task without owner and no person calling
    # WHEN it is checked
    with pytest.raises(ValidationFailed) as caught:
        rules.check_create({"kind": "task", "subject": "x"}, now=NOW, default_owner_id=None)

    # THEN owner_id is missing; other kinds need no owner
    assert fields_at_fault(caught.value) == {"owner_id": "missing"}
    assert rules.check_create({"kind": "note", "body": "x"}, now=NOW, default_owner_id=None)["owner_id"] is None


@pytest.mark.parametrize(("values", "faults"), [
    pytest.param({"kind": "note"}, {"body": "missing"}, id="note-without-body"),
    pytest.param({"kind": "task", "due_at": LATER}, {"subject": "missing"}, id="task-without-subject"),
    pytest.param({"kind": "email"}, {"direction": "missing"}, id="email-without-direction"),
    pytest.param({"kind": "note", "body": "x", "due_at": LATER}, {"due_at": "kind_field"}, id="note-with-due"),
    pytest.param({"kind": "call", "direction": "inbound"}, {"direction": "kind_field"}, id="call-with-direction"),
    pytest.param({"kind": "email", "direction": "inbound", "priority": "high", "starts_at": NOW},
                 {"priority": "kind_field", "starts_at": "kind_field"}, id="email-with-task-and-call-fields"),
    pytest.param({"kind": "meeting", "sent_at": NOW}, {"sent_at": "kind_field"}, id="meeting-with-sent-at"),
    pytest.param({"kind": "task", "subject": "x", "completed_at": LATER}, {"completed_at": "future"},
                 id="completed-in-the-future"),
    pytest.param({"kind": "email", "direction": "inbound", "sent_at": LATER}, {"sent_at": "future"},
                 id="sent-in-the-future"),
])
def test_kind_rules_refuse_with_every_field_at_fault(values: dict[str, Any], faults: dict[str, str]) -> None:
    # GIVEN an activity breaking its kind's rules
    # WHEN it is checked
    with pytest.raises(ValidationFailed) as caught:
        create(**values)

    # THEN each fault is named, with a reason code
    assert fields_at_fault(caught.value) == faults


def test_a_little_clock_skew_is_still_now() -> None:
    # GIVEN a completion a minute ahead of our clock
    # WHEN it is checked THEN it is accepted
    assert create(kind="task", subject="x", completed_at=NOW + timedelta(minutes=1))["completed_at"]


def test_absent_values_of_other_kinds_do_not_count() -> None:
    # GIVEN a note whose schema dump carries every field, most of them empty
    values = {"kind": "note", "body": "x", "due_at": None, "email_to": [], "links": None, "direction": None}

    # WHEN it is checked THEN it passes, with email_to as an empty list (the column is not nullable)
    assert create(**values)["email_to"] == []


def test_an_update_refuses_fields_of_another_kind_and_clearing_what_the_kind_needs() -> None:
    # GIVEN a note and a task
    current = {"created_at": EARLIER}

    # WHEN patches break their kinds
    with pytest.raises(ValidationFailed) as note:
        rules.check_update("note", current, {"due_at": None, "body": None}, now=NOW)
    with pytest.raises(ValidationFailed) as task:
        rules.check_update("task", current, {"subject": None, "priority": None, "owner_id": None}, now=NOW)

    # THEN every field is named, even a foreign field sent as null
    assert fields_at_fault(note.value) == {"due_at": "kind_field", "body": "missing"}
    assert fields_at_fault(task.value) == {"subject": "missing", "priority": "missing", "owner_id": "missing"}


@pytest.mark.parametrize(("kind", "patch", "occurred_at"), [
    pytest.param("task", {"due_at": LATER}, LATER, id="task-due-moves-it"),
    pytest.param("task", {"due_at": None}, EARLIER, id="task-undated-goes-back-to-creation"),
    pytest.param("call", {"starts_at": LATER}, LATER, id="call-start-moves-it"),
    pytest.param("email", {"sent_at": NOW}, NOW, id="email-sent-moves-it"),
    pytest.param("task", {"subject": "renamed"}, None, id="other-fields-leave-it"),
])
def test_an_update_moves_occurred_at_with_the_field_it_derives_from(
    kind: str, patch: dict[str, Any], occurred_at: datetime | None
) -> None:
    # GIVEN an activity created earlier
    # WHEN a patch is checked
    checked = rules.check_update(kind, {"created_at": EARLIER}, patch, now=NOW)

    # THEN occurred_at follows (or is left alone), and sent_at is never a column
    assert checked.get("occurred_at") == occurred_at
    assert "sent_at" not in checked


def test_links_normalise_merge_and_diff() -> None:
    # GIVEN an activity's links and a request naming some types
    current = {"contacts": ["C2", "C1"], "companies": ["K1"]}
    requested = rules.normalize_links({"contacts": ["C3", "C3", "C1"], "companies": [], "deals": None})

    # WHEN they are merged and compared
    merged = rules.merge_links(rules.compact_links(current), requested)
    added, removed = rules.link_changes(rules.compact_links(current), merged)

    # THEN named types are replaced (de-duplicated, sorted; [] clears), unnamed ones are kept
    assert requested == {"contacts": ["C1", "C3"], "companies": []}
    assert merged == {"contacts": ["C1", "C3"]}
    assert added == {"contacts": ["C3"]}
    assert removed == {"contacts": ["C2"], "companies": ["K1"]}


def test_activity_moment_is_the_later_of_time_and_completion_but_not_future() -> None:
    # GIVEN activity times WHEN the moment is computed THEN it is the latest past one
    assert rules.activity_moment(EARLIER, None, NOW) == EARLIER
    assert rules.activity_moment(EARLIER, NOW - timedelta(hours=1), NOW) == NOW - timedelta(hours=1)
    assert rules.activity_moment(LATER, None, NOW) == NOW


def test_ensure_task_refuses_other_kinds() -> None:
    # GIVEN a note WHEN asked to complete it THEN it is refused
    rules.ensure_task("task", "completed")
    with pytest.raises(ValidationFailed):
        rules.ensure_task("note", "completed")


@pytest.mark.parametrize(("text", "kinds"), [
    (None, set(rules.TIMELINE_KINDS)),
    ("note", {"note"}),
    (" note , history ", {"note", "history"}),
])
def test_timeline_kinds_parse(text: str | None, kinds: set[str]) -> None:
    # GIVEN a kinds parameter WHEN parsed THEN it is the set named (all when absent)
    assert rules.parse_timeline_kinds(text) == kinds


@pytest.mark.parametrize("text", ["", ",", "notes", "note,sms"])
def test_unknown_timeline_kinds_are_refused(text: str) -> None:
    # GIVEN a kinds parameter naming nothing or an unknown kind WHEN parsed THEN it is a 422
    with pytest.raises(ValidationFailed):
        rules.parse_timeline_kinds(text)


def test_merge_newest_first_interleaves_two_sources_and_cuts() -> None:
    # GIVEN two newest-first lists with ties broken by id
    t = [NOW - timedelta(minutes=i) for i in range(5)]
    first = [(t[0], "A9", "a0"), (t[2], "A5", "a2"), (t[2], "A1", "a2b")]
    second = [(t[1], "H1", "h1"), (t[2], "A3", "h2"), (t[4], "H0", "h4")]

    # WHEN merged with a limit
    page, more = rules.merge_newest_first(first, second, 4)

    # THEN the page is newest first across both, (time, id) descending, with more to come
    assert [item for _, _, item in page] == ["a0", "h1", "a2", "h2"]
    assert more is True
    assert rules.merge_newest_first(first[:1], [], 4) == (first[:1], False)
