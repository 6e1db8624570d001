"""The pure rules of automations: triggers meeting events, loops, the failure policy, schedules."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.automations import rules

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(("trigger", "event_type", "data", "met"), [
    ({"type": "record_created"}, "contact.created", {}, True),
    ({"type": "record_created"}, "contact.updated", {}, False),
    ({"type": "record_updated"}, "contact.updated", {"changes": {"tags": {}}}, True),
    ({"type": "record_updated"}, "company.updated", {}, False),
    ({"type": "field_changed", "field": "job_title"}, "contact.updated", {"changes": {"job_title": {}}}, True),
    ({"type": "field_changed", "field": "job_title"}, "contact.updated", {"changes": {"tags": {}}}, False),
    ({"type": "field_changed", "field": "custom_fields.tier"}, "contact.updated",
     {"changes": {"custom_fields.tier": {}}}, True),
])
def test_contact_triggers_meet_their_events(trigger: dict[str, str], event_type: str, data: dict[str, object],
                                            met: bool) -> None:
    # GIVEN a contact rule's trigger and an event
    # WHEN they are compared
    # THEN the trigger is met only by its own event (and, for field_changed, its field)
    assert rules.trigger_matches("contacts", trigger, event_type, data) is met


def test_stage_triggers_check_both_ends_of_the_move() -> None:
    # GIVEN a trigger on moves from stage A to stage B
    trigger = {"type": "deal_stage_changed", "from_stage_id": "A", "to_stage_id": "B"}

    # THEN only that move meets it
    assert rules.trigger_matches("deals", trigger, "deal.stage_changed", {"from_stage_id": "A", "to_stage_id": "B"})
    assert not rules.trigger_matches("deals", trigger, "deal.stage_changed", {"from_stage_id": "C", "to_stage_id": "B"})
    assert not rules.trigger_matches("deals", trigger, "deal.updated", {"from_stage_id": "A", "to_stage_id": "B"})


def test_a_rule_in_its_own_chain_or_a_long_chain_is_a_loop() -> None:
    # THEN a rule meeting itself, or a sixth rule in a row, stops; a short chain of others does not
    assert rules.loop_reason("R", []) is None
    assert rules.loop_reason("R", ["A", "B"]) is None
    assert "caused the event" in (rules.loop_reason("R", ["A", "R"]) or "")
    assert "5 rules in a row" in (rules.loop_reason("R", ["A", "B", "C", "D", "E"]) or "")


def test_the_fifth_failure_in_a_row_pauses() -> None:
    # GIVEN four failures, then a fifth
    # THEN only the fifth gives a pause reason, naming the last error
    assert rules.pause_reason(4, "boom") is None
    assert rules.pause_reason(5, "boom") == "failed 5 times in a row: boom"


@pytest.mark.parametrize(("expression", "expected"), [
    ("rate(1 minute)", datetime(2026, 11, 26, 12, 1, tzinfo=UTC)),
    ("rate(2 hours)", datetime(2026, 11, 26, 14, 0, tzinfo=UTC)),
    ("rate(1 day)", datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),
    ("cron(0 12 * * ? *)", datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),  # strictly after now
    ("cron(30 9 ? * 2 *)", datetime(2026, 11, 30, 9, 30, tzinfo=UTC)),  # AWS 2 = Monday
    ("cron(0 8 ? * MON-FRI *)", datetime(2026, 11, 27, 8, 0, tzinfo=UTC)),
    ("cron(0 0 L * ? *)", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
    ("cron(0/15 * * * ? *)", datetime(2026, 11, 26, 12, 15, tzinfo=UTC)),
])
def test_next_run_of_rates_and_aws_crons(expression: str, expected: datetime) -> None:
    # GIVEN a schedule expression at noon on a Thursday
    # WHEN its next firing is computed
    # THEN it is the first one strictly after now
    assert rules.next_run(expression, NOON) == expected


@pytest.mark.parametrize("expression", [
    "rate(0 minutes)", "rate(5 weeks)", "every day", "cron(0 9 * * * *)", "cron(0 9 * *)",
    "cron(0 9 ? * 8 *)", "cron(0 9 ? * 2#1 *)", "cron(61 9 * * ? *)",
])
def test_bad_schedules_are_refused(expression: str) -> None:
    # THEN an expression this engine cannot run is a ValueError (a 422 at registration)
    with pytest.raises(ValueError):
        rules.check_schedule(expression)


# ---- the ids a rule names ------------------------------------------------------------------------------
def test_every_id_of_a_rule_is_enumerated_with_the_field_a_422_names() -> None:
    # GIVEN a deal rule naming stages in its trigger, ids in its conditions and in each kind of action
    trigger = {"type": "deal_stage_changed", "to_stage_id": "S2", "from_stage_id": "S1"}
    conditions = {"filter_groups": [
        {"filters": [{"property": "pipeline_id", "operator": "EQ", "value": "P1"},
                     {"property": "amount", "operator": "GT", "value": 5},
                     {"property": "owner_id", "operator": "IN", "values": ["U1", "U2"]}]},
        {"filters": [{"property": "id", "operator": "NEQ", "value": "D1"},
                     {"property": "company_id", "operator": "HAS_PROPERTY"},
                     {"property": "custom_fields.ref", "operator": "EQ", "value": "not-an-id"}]}]}
    actions = [
        {"type": "create_task", "subject": "x", "owner": "U3"},
        {"type": "create_task", "subject": "x", "owner": "record_owner"},
        {"type": "update_field", "field": "stage_id", "value": "S3"},
        {"type": "update_field", "field": "contact_ids", "value": ["C1", "C2"]},
        {"type": "update_field", "field": "company_id", "value": None},
        {"type": "update_field", "field": "name", "value": "S4"},
        {"type": "send_webhook", "subscription_id": "W1"},
        {"type": "enqueue_job", "handler": "x_y", "payload": {"workspace_id": "WS", "delivery_id": "X"}},
        {"type": "enqueue_job", "handler": "x_y", "payload": {}},
        {"type": "add_tag", "tag": "t"},
    ]

    # WHEN its references are enumerated
    found = rules.references("deals", trigger, conditions, actions)

    # THEN each id is listed once, with its kind and the field a client wrote it in; nulls, plain values,
    # custom fields and `record_owner` are not references
    assert [(r.field, r.kind, r.id) for r in found] == [
        ("trigger.to_stage_id", "stage", "S2"),
        ("trigger.from_stage_id", "stage", "S1"),
        ("conditions.filter_groups.0.filters.0.value", "pipeline", "P1"),
        ("conditions.filter_groups.0.filters.2.values.0", "member", "U1"),
        ("conditions.filter_groups.0.filters.2.values.1", "member", "U2"),
        ("conditions.filter_groups.1.filters.0.value", "deals", "D1"),
        ("actions.0.owner", "member", "U3"),
        ("actions.2.value", "stage", "S3"),
        ("actions.3.value.0", "contacts", "C1"),
        ("actions.3.value.1", "contacts", "C2"),
        ("actions.6.subscription_id", "webhook", "W1"),
        ("actions.7.payload.workspace_id", "workspace", "WS"),
    ]


def test_a_rule_without_ids_names_nothing() -> None:
    # GIVEN a contact rule with a plain trigger, no conditions and a tag action
    # THEN it references nothing
    assert rules.references("contacts", {"type": "record_created"}, None, [{"type": "add_tag", "tag": "x"}]) == []


def test_every_id_property_of_every_record_object_has_a_reference_kind() -> None:
    # GIVEN the record services the app registers
    import app  # noqa: F401  (registers every capability's record service)
    from layers.records.service import object_types, service_for

    # WHEN their id-valued properties are collected
    id_properties = {p.name for name in object_types() for p in service_for(name).spec.properties  # type: ignore[union-attr]
                     if p.kind == "id"}

    # THEN each one (but the record's own id) says what kind of thing it names, so a rule naming one is checked
    assert id_properties - {"id"} <= set(rules.ID_PROPERTIES), id_properties - set(rules.ID_PROPERTIES)
    # AND each kind is a kind the engine can look up
    assert set(rules.ID_PROPERTIES.values()) <= {rules.MEMBER, rules.PIPELINE, rules.STAGE, *object_types()}


def test_the_relay_sends_automations_only_the_event_types_a_rules_trigger_listens_to() -> None:
    # GIVEN workspace A with a deal stage rule and an activity update rule, B with a contact creation rule
    triggers = {("A", "deals", "deal_stage_changed"), ("A", "activities", "field_changed"),
                ("B", "contacts", "record_created")}
    pending = {"A": {"contact.created", "deal.created", "deal.stage_changed", "activity.updated"},
               "B": {"contact.created", "contact.updated", "deal.stage_changed"}, "C": {"contact.created"}}

    # WHEN the interest in the pending events is asked
    wanted = rules.interest(triggers, pending)

    # THEN only the pairs some rule of that very workspace listens to are wanted
    assert wanted == {("A", "deal.stage_changed"), ("A", "activity.updated"), ("B", "contact.created")}
    assert rules.interest(set(), pending) == set()
