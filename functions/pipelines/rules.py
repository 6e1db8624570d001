"""Pipeline rules (pure): exact probabilities, the default stages, stage order and the open-stage rule."""
from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from shared.errors import ValidationFailed

MAX_STAGES = 50
PROBABILITY_PLACES = 4  # the column is DECIMAL(5,4)
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")

DEFAULT_PIPELINE_NAME = "Sales pipeline"
# (name, probability, kind), in order: HubSpot's default deal stages.
DEFAULT_STAGES: tuple[tuple[str, str, str], ...] = (
    ("Appointment scheduled", "0.2", "open"),
    ("Qualified to buy", "0.4", "open"),
    ("Presentation scheduled", "0.6", "open"),
    ("Decision maker bought-in", "0.8", "open"),
    ("Contract sent", "0.9", "open"),
    ("Closed won", "1", "won"),
    ("Closed lost", "0", "lost"),
)


def parse_probability(value: Any) -> Decimal:
    """A decimal string ("0.25") or the integers 0 and 1; floats are refused (they are not exact)."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('send the probability as a decimal string, e.g. "0.25"')
    else:
        text = str(value).strip()
        if not _DECIMAL.match(text):
            raise ValueError('must be a decimal number between 0 and 1 as a string, e.g. "0.25"')
        number = Decimal(text)
    if not Decimal(0) <= number <= Decimal(1):
        raise ValueError("must be between 0 and 1")
    if -number.as_tuple().exponent > PROBABILITY_PLACES:  # type: ignore[operator]
        raise ValueError(f"at most {PROBABILITY_PLACES} decimal places")
    return number


def require_open_stage(kinds: Sequence[str], *, field: str) -> None:
    """A pipeline keeps at least one open stage: new deals start in the first one."""
    if "open" not in kinds:
        raise ValidationFailed("a pipeline needs at least one open stage", errors=[
            {"field": field, "message": "at least one stage must be of kind open", "code": "open_stage"}])


def first_open(stages: Sequence[tuple[str, str]]) -> str | None:
    """The id of the first open stage of (id, kind) pairs in order."""
    return next((stage_id for stage_id, kind in stages if kind == "open"), None)


def insert_at(order: Sequence[str], stage_id: str, position: int | None) -> list[str]:
    """The order with `stage_id` at `position` (the end when None or past it)."""
    new = list(order)
    new.insert(len(new) if position is None else min(position, len(new)), stage_id)
    return new


def reordered(current: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """`wanted` when it names every current stage exactly once; 422 otherwise."""
    duplicates = sorted({s for s in wanted if list(wanted).count(s) > 1})
    unknown = sorted(set(wanted) - set(current))
    missing = sorted(set(current) - set(wanted))
    if duplicates or unknown or missing:
        problems = ([f"repeated: {', '.join(duplicates)}"] if duplicates else []) + \
                   ([f"not stages of this pipeline: {', '.join(unknown)}"] if unknown else []) + \
                   ([f"missing: {', '.join(missing)}"] if missing else [])
        raise ValidationFailed("stage_ids must list every stage of the pipeline exactly once", errors=[
            {"field": "stage_ids", "message": "; ".join(problems), "code": "permutation"}])
    return list(wanted)
