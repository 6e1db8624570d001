"""Object type spellings: the singular is answered with the plural it meant, event types the other way round."""
from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ValidationError

from functions.automations import rules
from shared.objects import event_type_hint, object_type_hint, plural_object_type


class _Body(BaseModel):
    object_type: Annotated[Literal["contacts", "companies"], plural_object_type("contacts", "companies")]


@pytest.mark.parametrize(("value", "hint"), [
    ("contact", "contacts"), ("Company", "companies"), (" deal ", "deals"), ("activity", "activities"),
    ("contacts", None), ("ticket", None), ("", None),
])
def test_a_singular_object_type_hints_its_plural(value: str, hint: str | None) -> None:
    assert object_type_hint(value) == hint


def test_a_field_refuses_the_singular_with_the_hint_and_anything_else_as_its_literal_does() -> None:
    # THEN the plural is taken as it is
    assert _Body(object_type="contacts").object_type == "contacts"
    # AND the singular of an allowed type is refused naming the plural
    with pytest.raises(ValidationError) as refused:
        _Body(object_type="company")
    (error,) = refused.value.errors()
    assert (error["type"], error["msg"]) == ("object_type", "object type 'company' is not known; did you mean "
                                                            "'companies'?")
    # AND a singular whose plural the field does not take gets no misleading guess, only the list
    with pytest.raises(ValidationError) as refused:
        _Body(object_type="deal")
    assert refused.value.errors()[0]["type"] == "literal_error"


@pytest.mark.parametrize(("pattern", "hint"), [
    ("contacts.created", "contact.created"), ("deals.*", "deal.*"), ("pipelines.updated", "pipeline.updated"),
    ("contact.created", None), ("deal.*", None), ("*", None), ("contacts", None),
])
def test_an_event_type_naming_its_object_in_the_plural_hints_the_singular(pattern: str, hint: str | None) -> None:
    assert event_type_hint(pattern) == hint


def test_rules_name_objects_in_the_plural_and_listen_to_singular_events() -> None:
    # THEN each rule object type's triggers listen to its events, and events lead back to the object type
    assert rules.event_type_of("contacts", "record_created") == "contact.created"
    assert rules.event_type_of("activities", "field_changed") == "activity.updated"
    assert rules.event_type_of("deals", "deal_stage_changed") == "deal.stage_changed"
    assert rules.event_type_of("companies", "schedule") is None
    assert [rules.object_type_of(t) for t in ("company.updated", "deal.stage_changed", "team.created")] == [
        "companies", "deals", None]
