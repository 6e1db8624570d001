"""JSON nesting depth, found before parsing: exact at the limit, blind to brackets in strings, linear."""
from __future__ import annotations

import json

import pytest

from shared.jsondepth import MAX_JSON_DEPTH, nests_deeper_than


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("text", "too_deep"), [
    (_nested(MAX_JSON_DEPTH), False),
    (_nested(MAX_JSON_DEPTH + 1), True),
    ("[" * 50_000, True),  # not even closed
    ('{"a":' * 5_000 + "1" + "}" * 5_000, True),
    (json.dumps({"custom_fields": {"notes": "[" * 10_000 + "{" * 10_000}}), False),  # brackets in a string
    (json.dumps(["\\\"[[[" * 100]), False),  # escaped quotes do not end the string
    (json.dumps([[{"a": [1, {"b": []}]}]] * 10_000), False),  # wide, not deep
    ('"unterminated ' + "[" * 100, False),  # the string runs to the end (json.loads refuses it)
    (b"[" * 100, True),
    ("", False),
])
def test_depth_is_measured_on_the_text(text: str | bytes, too_deep: bool) -> None:
    assert nests_deeper_than(text) is too_deep


def test_a_limit_can_be_given() -> None:
    assert nests_deeper_than(_nested(3), limit=2) and not nests_deeper_than(_nested(2), limit=2)


def test_a_text_json_loads_would_recurse_on_is_refused_before_it_is_parsed() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(text)
    assert nests_deeper_than(text)
