"""The ISO 4217 table: codes and the decimal places of their minor units."""
from __future__ import annotations

import pytest

from functions.deals.currencies import CODES, MINOR_UNITS, minor_units


@pytest.mark.parametrize(("code", "places"), [
    ("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0), ("ISK", 0), ("CLP", 0), ("XOF", 0),
    ("BHD", 3), ("KWD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("LYD", 3), ("IQD", 3), ("CLF", 4), ("UYW", 4),
])
def test_well_known_codes_have_their_minor_units(code: str, places: int) -> None:
    # GIVEN a currency WHEN its minor unit is looked up THEN it has the places ISO 4217 gives it
    assert minor_units(code) == places


@pytest.mark.parametrize("code", ["XAU", "XDR", "XTS", "XXX", "usd", "US", "ABC", ""])
def test_codes_without_minor_units_or_unknown_are_none(code: str) -> None:
    # GIVEN metals, drawing rights, test codes, lower case or made-up codes
    # WHEN looked up THEN none has minor units (a deal cannot be priced in them)
    assert minor_units(code) is None


def test_the_table_is_well_formed() -> None:
    # GIVEN the whole table
    # WHEN its entries are checked
    # THEN every code is three capital letters with 0, 2, 3 or 4 places, and CODES lists them sorted
    assert len(MINOR_UNITS) > 150
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in MINOR_UNITS)
    assert set(MINOR_UNITS.values()) == {0, 2, 3, 4}
    assert list(CODES) == sorted(MINOR_UNITS)
