"""Public ids: ULIDs — 48 bits of milliseconds then 80 random bits, so unguessable and time-sorted."""
from __future__ import annotations

import re

from ulid import ULID

_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def new_id() -> str:
    return str(ULID())


def is_valid_id(value: str) -> bool:
    return bool(_ULID_RE.match(value))
