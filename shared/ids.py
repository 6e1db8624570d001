"""Public ids: ULIDs — 48 bits of milliseconds then 80 random bits, so unguessable and time-sorted.

Every id this API hands out is 26 characters of Crockford base32 (upper case, no I L O U). Anything else —
another length, lower case, non-ASCII, control bytes — can name nothing of ours: the database layer turns it
into a value that matches no row (layers/db/base.py, so a path id answers 404 instead of tripping MariaDB's
collation rules), and request bodies refuse it with a 422 (`RecordId` in shared/schemas.py).
"""
from __future__ import annotations

import re

from ulid import ULID

ID_LENGTH = 26
ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def new_id() -> str:
    return str(ULID())


def is_valid_id(value: object) -> bool:
    """True when `value` could be an id this API issued (fullmatch: a trailing newline is not an id)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None
