"""Deal rules: exact amounts, currencies, what entering a stage does, and a deal's contacts."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from functions.deals import rules
from functions.deals.rules import UNSET, Placement
from shared.errors import ValidationFailed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


def field_of(error: ValidationFailed) -> str:
    assert error.errors
    return str(error.errors[0]["field"])


# ---- amounts and currencies -----------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "expected"), [
    ("1250.50", Decimal("1250.50")), ("0", Decimal("0")), (" 7 ", Decimal("7")), (1250, Decimal("1250")),
    ("12345678901234.5678", Decimal("12345678901234.5678")), ("99999999999999", Decimal("99999999999999")),
    ("1.50000", Decimal("1.50000")),  # trailing zeros do not count as places
])
def test_amounts_are_exact_decimals_from_strings_or_integers(given: Any, expected: Decimal) -> None:
    # GIVEN an amount as a client sends it WHEN parsed THEN it is that exact decimal
    parsed = rules.parse_amount(given)
    assert parsed == expected and isinstance(parsed, Decimal)


@pytest.mark.parametrize("given", [
    12.5, 0.1, True, None, [], "abc", "-5", "1e3", "NaN", "Infinity", "1,000", "", ".5", "1.",
    "100000000000000",  # 15 digits before the point: more than an amount may have
    "1.00001",  # 5 places: more than the column keeps
])
def test_floats_negatives_and_malformed_amounts_are_refused(given: Any) -> None:
    # GIVEN a float (not exact), a negative, a non-number or a value the column cannot hold
    # WHEN parsed THEN it is refused
    with pytest.raises(ValueError):
        rules.parse_amount(given)


@pytest.mark.parametrize(("given", "expected"), [("usd", "USD"), (" EUR ", "EUR"), ("JPY", "JPY")])
def test_currencies_are_upper_cased_iso_codes(given: str, expected: str) -> None:
    assert rules.parse_currency(given) == expected


@pytest.mark.parametrize("given", ["XAU", "ABC", "US", 840, None])
def test_unknown_currencies_are_refused(given: Any) -> None:
    with pytest.raises(ValueError):
        rules.parse_currency(given)


@pytest.mark.parametrize(("amount", "currency"), [
    ("1250", "JPY"), ("12.34", "USD"), ("12.3", "USD"), ("1.234", "BHD"), ("12345678901234.5678", "CLF"),
    ("12.5000", "USD"),  # stored with four places, still only two significant ones
])
def test_amounts_within_the_currency_minor_unit_pass(amount: str, currency: str) -> None:
    # GIVEN an amount with no more places than its currency's minor unit WHEN checked THEN it passes
    rules.check_amount(Decimal(amount), currency)


@pytest.mark.parametrize(("amount", "currency"), [("12.5", "JPY"), ("1.005", "USD"), ("0.0001", "BHD")])
def test_amounts_finer_than_the_minor_unit_are_refused_on_amount(amount: str, currency: str) -> None:
    # GIVEN more places than the currency has WHEN checked THEN the amount is at fault
    with pytest.raises(ValidationFailed) as caught:
        rules.check_amount(Decimal(amount), currency)
    assert field_of(caught.value) == "amount"


def test_an_amount_needs_a_currency_but_a_currency_needs_no_amount() -> None:
    # GIVEN an amount without a currency WHEN checked THEN currency is at fault
    with pytest.raises(ValidationFailed) as caught:
        rules.check_amount(Decimal("10"), None)
    assert field_of(caught.value) == "currency"
    # AND no amount is always fine
    rules.check_amount(None, None)
    rules.check_amount(None, "EUR")


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("12.5", "USD", "12.50"), ("1250.0000", "JPY", "1250"), ("1.2", "BHD", "1.200"),
    ("12345678901234.5678", "CLF", "12345678901234.5678"), ("0", "EUR", "0.00"), ("3.1", None, "3.1000"),
])
def test_amounts_are_formatted_in_the_currency_minor_units(amount: str, currency: str | None, expected: str) -> None:
    assert rules.format_amount(Decimal(amount), currency) == expected


# ---- stages -------------------------------------------------------------------------------------------
def test_entering_a_lost_stage_needs_a_reason() -> None:
    # GIVEN an open deal WHEN it moves to a lost stage without a reason THEN lost_reason is at fault
    with pytest.raises(ValidationFailed) as caught:
        rules.enter_stage(Placement("open"), target_kind="lost", now=NOW)
    assert field_of(caught.value) == "lost_reason"
    # AND an empty reason is no reason either
    with pytest.raises(ValidationFailed):
        rules.enter_stage(Placement("open"), target_kind="lost", lost_reason="", now=NOW)


def test_entering_a_lost_stage_closes_the_deal_with_its_reason() -> None:
    placed = rules.enter_stage(Placement("open"), target_kind="lost", lost_reason="Budget", now=NOW)
    assert placed == {"closed_at": NOW, "lost_reason": "Budget"}


def test_a_lost_deal_moving_to_another_lost_stage_keeps_its_reason_and_date() -> None:
    # GIVEN a deal lost earlier WHEN it moves to another lost stage without a new reason
    placed = rules.enter_stage(Placement("lost", EARLIER, "Budget"), target_kind="lost", now=NOW)
    # THEN it keeps its reason and the date it was closed
    assert placed == {"closed_at": EARLIER, "lost_reason": "Budget"}


def test_entering_a_won_stage_sets_the_close_date_and_no_reason() -> None:
    assert rules.enter_stage(Placement("open"), target_kind="won", now=NOW) == {"closed_at": NOW, "lost_reason": None}
    # AND a deal lost before is closed again, now, as won
    assert rules.enter_stage(Placement("lost", EARLIER, "Budget"), target_kind="won", now=NOW) == {
        "closed_at": NOW, "lost_reason": None}
    # AND moving between won stages keeps the date it was won
    assert rules.enter_stage(Placement("won", EARLIER), target_kind="won", now=NOW)["closed_at"] == EARLIER


@pytest.mark.parametrize("current", [Placement("won", EARLIER), Placement("lost", EARLIER, "Budget"),
                                     Placement("open"), Placement(None)])
def test_an_open_stage_reopens_the_deal(current: Placement) -> None:
    # GIVEN a closed (or open, or new) deal WHEN it enters an open stage THEN it has no close date nor reason
    assert rules.enter_stage(current, target_kind="open", now=NOW) == {"closed_at": None, "lost_reason": None}


@pytest.mark.parametrize("target", ["open", "won"])
def test_a_lost_reason_outside_a_lost_stage_is_refused(target: str) -> None:
    # GIVEN a lost reason for a deal that is not going to a lost stage WHEN placed THEN it is refused
    with pytest.raises(ValidationFailed) as caught:
        rules.enter_stage(Placement("open"), target_kind=target, lost_reason="Budget", now=NOW)
    assert field_of(caught.value) == "lost_reason"
    # AND an explicit null is fine (it clears nothing that is there)
    assert rules.enter_stage(Placement("open"), target_kind=target, lost_reason=None, now=NOW)["lost_reason"] is None


def test_a_new_deal_created_in_a_lost_stage_follows_the_same_rule() -> None:
    with pytest.raises(ValidationFailed):
        rules.enter_stage(Placement(None), target_kind="lost", lost_reason=None, now=NOW)
    assert rules.enter_stage(Placement(None), target_kind="lost", lost_reason="Late", now=NOW) == {
        "closed_at": NOW, "lost_reason": "Late"}


def test_a_stage_must_belong_to_the_deal_pipeline() -> None:
    rules.require_stage_of("p1", "p1")
    for stage_pipeline in ("p2", None):  # another pipeline's stage, or no live stage at all
        with pytest.raises(ValidationFailed) as caught:
            rules.require_stage_of(stage_pipeline, "p1")
        assert field_of(caught.value) == "stage_id"


# ---- contacts ---------------------------------------------------------------------------------------------
def test_contacts_are_sorted_unique_and_the_primary_is_among_them() -> None:
    # GIVEN a new deal's contacts with a repeat, and a primary not in the list
    # WHEN merged THEN the list is sorted, each once, with the primary added
    assert rules.contacts_after([], None, contact_ids=["c", "a", "c"], primary_contact_id="b") == (
        ["a", "b", "c"], "b")


def test_replacing_the_contacts_drops_a_primary_no_longer_there() -> None:
    assert rules.contacts_after(["a", "b"], "a", contact_ids=["b"]) == (["b"], None)
    assert rules.contacts_after(["a", "b"], "b", contact_ids=["b", "c"]) == (["b", "c"], "b")


def test_the_primary_alone_can_be_set_or_cleared() -> None:
    assert rules.contacts_after(["a", "b"], None, primary_contact_id="b") == (["a", "b"], "b")
    assert rules.contacts_after(["a", "b"], "b", primary_contact_id=None) == (["a", "b"], None)
    assert rules.contacts_after(["a"], "a", primary_contact_id="z") == (["a", "z"], "z")
    assert rules.contacts_after(["a"], "a", contact_ids=UNSET, primary_contact_id=UNSET) == (["a"], "a")
