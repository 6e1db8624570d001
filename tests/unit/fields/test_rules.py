"""Rules of a custom field definition: options, shapes, reserved keys, immutable parts."""
from __future__ import annotations

import pytest

from functions.fields import rules
from shared.errors import ValidationFailed


def test_options_are_trimmed_and_keep_their_order() -> None:
    # GIVEN options with padding WHEN normalised THEN trimmed, in order
    assert rules.normalize_options([" Gold", "Silver ", "Bronze"]) == ["Gold", "Silver", "Bronze"]


@pytest.mark.parametrize("options", [["Gold", "gold"], ["A", " "], ["x" * 101]])
def test_options_refuse_case_duplicates_blanks_and_long_ones(options: list[str]) -> None:
    # GIVEN options that clash ignoring case, are blank or too long WHEN normalised THEN refused
    with pytest.raises(ValueError):
        rules.normalize_options(options)


@pytest.mark.parametrize(("field_type", "unique", "options", "at"), [
    ("single_select", False, [], "options"),
    ("multi_select", False, [], "options"),
    ("text", False, ["A"], "options"),
    ("long_text", True, [], "unique"),
    ("date", True, [], "unique"),
    ("datetime", True, [], "unique"),
    ("boolean", True, [], "unique"),
    ("currency", True, [], "unique"),
    ("multi_select", True, ["A"], "unique"),
])
def test_shapes_that_do_not_fit_the_type_are_422(field_type: str, unique: bool, options: list[str], at: str) -> None:
    # GIVEN a definition whose options or unique flag do not fit its type WHEN checked THEN 422 at that part
    with pytest.raises(ValidationFailed) as caught:
        rules.check_shape(field_type=field_type, unique=unique, options=options)
    assert caught.value.errors is not None and caught.value.errors[0]["field"] == at


@pytest.mark.parametrize(("field_type", "options"), [
    ("text", []), ("email", []), ("url", []), ("number", []), ("single_select", ["A"]),
])
def test_unique_is_allowed_for_comparable_types(field_type: str, options: list[str]) -> None:
    # GIVEN a unique definition of a comparable type WHEN checked THEN it passes
    rules.check_shape(field_type=field_type, unique=True, options=options)


def test_a_key_may_not_shadow_a_built_in_property() -> None:
    # GIVEN the built-in names of an object WHEN a key equal to one is checked THEN 422 "reserved"
    with pytest.raises(ValidationFailed) as caught:
        rules.check_key_free("email", {"email", "first_name"})
    assert caught.value.errors == [{"field": "key", "message": "'email' is a built-in property of this object",
                                    "code": "reserved"}]
    rules.check_key_free("email_2", {"email"})


def test_object_type_key_and_type_are_immutable_but_may_be_echoed() -> None:
    current = {"object_type": "contacts", "key": "tier", "type": "text"}
    # GIVEN the current values sent back WHEN checked THEN fine
    rules.check_immutable(current, {"key": "tier", "type": "text", "label": "New"})
    # GIVEN a changed key and type WHEN checked THEN 422 naming both
    with pytest.raises(ValidationFailed) as caught:
        rules.check_immutable(current, {"key": "level", "type": "number"})
    assert caught.value.errors is not None
    assert [(e["field"], e["code"]) for e in caught.value.errors] == [("key", "immutable"), ("type", "immutable")]


def test_only_description_can_be_nulled() -> None:
    # GIVEN an edit clearing description WHEN checked THEN fine; clearing label or required THEN 422
    rules.check_no_nulls({"description": None})
    with pytest.raises(ValidationFailed):
        rules.check_no_nulls({"label": None})
    with pytest.raises(ValidationFailed):
        rules.check_no_nulls({"required": None})


def test_removed_options_compare_exact_spelling() -> None:
    # GIVEN an edit of the options WHEN compared THEN the dropped ones are listed, in their old order
    assert rules.removed_options(["A", "B", "C"], ["C", "A", "D"]) == ["B"]
    assert rules.removed_options(["gold"], ["Gold"]) == ["gold"]  # a stored value is spelled like its option
