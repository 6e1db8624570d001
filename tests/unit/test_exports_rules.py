"""Export rules: columns, CSV cells (formulas neutralised), JSON lines."""
from __future__ import annotations

import json

import pytest

from functions.exports import rules
from shared.errors import ValidationFailed


def test_columns_default_to_every_property_and_requested_ones_are_checked() -> None:
    assert rules.columns(None, builtin=["id", "email", "custom_fields"], custom_keys=["tier"]) == [
        "id", "email", "custom_fields.tier"]
    assert rules.columns(["email"], builtin=["id", "email"], custom_keys=[]) == ["id", "email"]
    with pytest.raises(ValidationFailed):
        rules.columns(["shoe_size"], builtin=["id", "email"], custom_keys=[])


@pytest.mark.parametrize(("value", "cell"), [
    (None, ""), (True, "true"), (["a", "b"], "a; b"), ({"b": 1, "a": 2}, '{"a":2,"b":1}'), (-5, "-5"),
    ("-5.5", "-5.5"), ("=SUM(A1)", "'=SUM(A1)"), ("@cmd", "'@cmd"), ("+1 555", "'+1 555"), ("plain", "plain"),
])
def test_csv_cells(value: object, cell: str) -> None:
    assert rules.csv_cell(value) == cell


def test_json_lines_keep_the_record_or_the_selected_properties() -> None:
    record = {"id": "1", "email": "a@x.com", "custom_fields": {"tier": "gold", "x": 1}}
    assert json.loads(rules.json_line(record, None)) == record
    assert json.loads(rules.json_line(record, ["id", "custom_fields.tier"])) == {
        "id": "1", "custom_fields": {"tier": "gold"}}
