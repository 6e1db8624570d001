"""Pure rules of an export: its columns and how a record's value is written in a CSV cell or a JSON line."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.errors import ValidationFailed

CUSTOM_PREFIX = "custom_fields."
# An export is one job that streams every page (100,000 contacts in well under a minute): one still
# running after six hours has lost its job (its worker died on every try and the queue dead-lettered it).
STALLED_AFTER = timedelta(hours=6)
# A spreadsheet runs a cell that starts like a formula; such text is written with a leading quote.
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")


def columns(requested: list[str] | None, *, builtin: Iterable[str], custom_keys: Iterable[str]) -> list[str]:
    """The export's columns: the requested ones (each a known property), else every property."""
    names = [n for n in builtin if n != "custom_fields"]
    available = [*names, *(CUSTOM_PREFIX + key for key in custom_keys)]
    if requested is None:
        return available
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise ValidationFailed("unknown properties", errors=[
            {"field": f"properties.{requested.index(name)}", "message": f"unknown property {name!r}",
             "code": "unknown"} for name in unknown])
    return list(dict.fromkeys(["id", *requested]))


def value_of(record: dict[str, Any], column: str) -> Any:
    if column.startswith(CUSTOM_PREFIX):
        return (record.get("custom_fields") or {}).get(column.removeprefix(CUSTOM_PREFIX))
    return record.get(column)


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    text = str(value)
    return "'" + text if _FORMULA.match(text) and not _NUMBER.match(text) else text


def json_line(record: dict[str, Any], selected: list[str] | None) -> str:
    """The record as the API answers it, or only the selected properties (custom ones under custom_fields)."""
    if selected is None:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    shaped: dict[str, Any] = {}
    for column in selected:
        if column.startswith(CUSTOM_PREFIX):
            shaped.setdefault("custom_fields", {})[column.removeprefix(CUSTOM_PREFIX)] = value_of(record, column)
        else:
            shaped[column] = record.get(column)
    return json.dumps(shaped, separators=(",", ":"), ensure_ascii=False)
