"""Opaque pagination cursors: the keyset position, signed so clients cannot forge positions."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Literal, Protocol, TypeVar

from shared.errors import ValidationFailed


def encode_cursor(position: dict[str, Any], secret: str) -> str:
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True, default=str).encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


def decode_cursor_for(cursor: str | None, secret: str, **bound: Any) -> dict[str, Any]:
    """Decode a cursor that must come from the same query: each `bound` value (the record, the filters)
    must equal what the cursor was issued with, else 422. No cursor → an empty position."""
    if cursor is None:
        return {}
    position = decode_cursor(cursor, secret)
    if any(position.get(key) != value for key, value in bound.items()):
        raise ValidationFailed("this cursor belongs to another query", errors=[
            {"field": "cursor", "message": "cursor does not match this query", "code": "invalid"}])
    return position


def decode_cursor(cursor: str, secret: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        mac, payload = raw[:12], raw[12:]
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:12]
        if not hmac.compare_digest(mac, expected):
            raise ValueError("bad signature")
        position = json.loads(payload)
        if not isinstance(position, dict):
            raise ValueError("not an object")
        return position
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "cursor is not one this API issued",
            errors=[{"field": "cursor", "message": "invalid cursor", "code": "invalid"}],
        ) from exc


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_HasId)
Direction = Literal["after", "before"]


def id_position(cursor: str | None, secret: str, *, query: str, direction: Direction) -> str | None:
    """The id a page of rows in id order continues from (None: the first page); 422 for another query's cursor."""
    if cursor is None:
        return None
    return str(decode_cursor_for(cursor, secret, q=query).get(direction, ""))


def id_page(rows: list[R], *, limit: int, secret: str, query: str, direction: Direction) -> tuple[list[R], str | None]:
    """Of `limit + 1` rows fetched in id order: the page, and the cursor past its last row (None on the last page)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor({direction: rows[-1].id, "q": query}, secret)
