"""Pipeline rules: exact probabilities, default stages, order and the open-stage rule."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from functions.pipelines import rules
from shared.errors import ValidationFailed


@pytest.mark.parametrize(("given", "expected"), [
    ("0.25", Decimal("0.25")), ("0", Decimal("0")), ("1", Decimal("1")), ("1.0000", Decimal("1")),
    ("0.0001", Decimal("0.0001")), (0, Decimal(0)), (1, Decimal(1)),
])
def test_probabilities_are_exact_decimals_between_0_and_1(given: Any, expected: Decimal) -> None:
    # GIVEN a probability as a string (or the integers 0 and 1) WHEN parsed THEN it is that exact decimal
    assert rules.parse_probability(given) == expected


@pytest.mark.parametrize("given", [0.25, True, None, "1.5", "-0.1", "2", "0.00001", "abc", "1e-1", ".5"])
def test_floats_and_out_of_range_probabilities_are_refused(given: Any) -> None:
    # GIVEN a float, a value outside 0..1, more than 4 places or not a number WHEN parsed THEN refused
    with pytest.raises(ValueError):
        rules.parse_probability(given)


def test_the_default_stages_are_in_order_with_an_open_a_won_and_a_lost_one() -> None:
    # GIVEN the default pipeline's stages
    kinds = [kind for _, _, kind in rules.DEFAULT_STAGES]
    probabilities = [Decimal(p) for _, p, _ in rules.DEFAULT_STAGES]

    # THEN they start open, end won then lost, and open probabilities rise
    assert kinds[0] == "open" and kinds[-2:] == ["won", "lost"]
    open_probabilities = [p for p, k in zip(probabilities, kinds, strict=True) if k == "open"]
    assert open_probabilities == sorted(open_probabilities)
    assert all(rules.parse_probability(p) == Decimal(p) for _, p, _ in rules.DEFAULT_STAGES)


def test_a_pipeline_needs_an_open_stage() -> None:
    rules.require_open_stage(["won", "open"], field="stages")
    with pytest.raises(ValidationFailed) as caught:
        rules.require_open_stage(["won", "lost"], field="stages")
    assert caught.value.errors and caught.value.errors[0]["field"] == "stages"
    with pytest.raises(ValidationFailed):
        rules.require_open_stage([], field="stage_id")


def test_the_first_open_stage_is_found_in_order() -> None:
    assert rules.first_open([("w", "won"), ("a", "open"), ("b", "open")]) == "a"
    assert rules.first_open([("w", "won")]) is None


@pytest.mark.parametrize(("position", "expected"), [
    (None, ["a", "b", "c", "n"]), (0, ["n", "a", "b", "c"]), (1, ["a", "n", "b", "c"]), (99, ["a", "b", "c", "n"]),
])
def test_a_new_stage_goes_where_asked_or_last(position: int | None, expected: list[str]) -> None:
    assert rules.insert_at(["a", "b", "c"], "n", position) == expected


def test_a_reorder_names_every_stage_once() -> None:
    assert rules.reordered(["a", "b", "c"], ["c", "a", "b"]) == ["c", "a", "b"]
    for wanted in (["a", "b"], ["a", "b", "c", "d"], ["a", "a", "b", "c"], ["a", "b", "x"]):
        with pytest.raises(ValidationFailed) as caught:
            rules.reordered(["a", "b", "c"], wanted)
        assert caught.value.errors and caught.value.errors[0]["field"] == "stage_ids"
