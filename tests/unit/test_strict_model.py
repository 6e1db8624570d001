"""StrictModel: text in any input field is plain text (no C0 controls but tab, LF, CR; no lone surrogates)."""
from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from layers.http.problems import field_errors
from shared.schemas import StrictModel


class Inner(StrictModel):
    text: str = ""


class Body(StrictModel):
    name: str | None = None
    tags: list[str] = []
    custom_fields: dict[str, Any] = {}
    inner: Inner | None = None
    inners: list[Inner] = []


class Raw(StrictModel):
    inputs: list[Any] = []
    unvalidated_fields: ClassVar[frozenset[str]] = frozenset({"inputs"})


def _fields(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Body.model_validate(body)
    errors = field_errors(caught.value)
    assert {e["code"] for e in errors} == {"control_character"}, errors
    return [e["field"] for e in errors]


@pytest.mark.parametrize("bad", [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\ud800"])
def test_every_c0_control_but_tab_newline_and_return_is_refused(bad: str) -> None:
    assert _fields({"custom_fields": {"notes": f"a{bad}b"}}) == ["custom_fields.notes"]


def test_the_error_names_where_inside_the_field() -> None:
    assert _fields({"name": "a\x00"}) == ["name"]
    assert _fields({"tags": ["ok", "x\x00y"]}) == ["tags.1"]
    assert _fields({"custom_fields": {"list": [1, {"deep": "\x07"}]}}) == ["custom_fields.list.1.deep"]
    assert _fields({"custom_fields": {"key\x00": 1}}) == ["custom_fields.key\x00"]
    assert _fields({"inner": {"text": "\x1b"}}) == ["inner.text"]
    assert _fields({"inners": [{"text": ""}, {"text": "\x00"}]}) == ["inners.1.text"]


def test_tab_newline_and_carriage_return_are_text() -> None:
    assert Body.model_validate({"custom_fields": {"notes": "a\tb\r\nc"}}).custom_fields == {"notes": "a\tb\r\nc"}


def test_raw_fields_are_left_to_the_model_that_validates_them_later() -> None:
    assert Raw.model_validate({"inputs": [{"first_name": "\x00"}]}).inputs == [{"first_name": "\x00"}]
