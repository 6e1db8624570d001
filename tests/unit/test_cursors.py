"""Signed pagination cursors: they round-trip, and anything else is a 422 on `cursor`."""
from __future__ import annotations

import base64
import json

import pytest

from shared.cursors import decode_cursor, encode_cursor
from shared.errors import ValidationFailed

SECRET = "unit-secret"
POSITION = {"s": "abc123", "k": [None, 42, "2024-01-01T00:00:00Z", "01HZZZ"]}


def _assert_cursor_rejected(cursor: str, secret: str = SECRET) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, secret)
    assert caught.value.status == 422
    assert [e["field"] for e in caught.value.errors or []] == ["cursor"]


def test_round_trip_gives_back_the_position() -> None:
    # GIVEN a keyset position
    # WHEN it is encoded and decoded with the same secret
    cursor = encode_cursor(POSITION, SECRET)
    decoded = decode_cursor(cursor, SECRET)

    # THEN the position comes back unchanged, in a URL-safe token without padding
    assert decoded == POSITION
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor


def test_cursor_does_not_expose_plain_json() -> None:
    # GIVEN / WHEN a cursor is made THEN it is opaque text, not the JSON itself
    cursor = encode_cursor(POSITION, SECRET)
    assert "abc123" not in cursor


def test_wrong_secret_is_rejected() -> None:
    # GIVEN a cursor signed with another secret
    cursor = encode_cursor(POSITION, "another-secret")

    # WHEN / THEN it is refused
    _assert_cursor_rejected(cursor)


def test_tampered_payload_is_rejected() -> None:
    # GIVEN a real cursor whose position is rewritten but whose signature is kept
    raw = base64.urlsafe_b64decode(encode_cursor(POSITION, SECRET) + "==")
    forged_payload = json.dumps({**POSITION, "k": [None, 0, "2000-01-01T00:00:00Z", "0"]},
                                separators=(",", ":"), sort_keys=True).encode()
    forged = base64.urlsafe_b64encode(raw[:12] + forged_payload).decode().rstrip("=")

    # WHEN / THEN it is refused
    _assert_cursor_rejected(forged)


def test_flipping_one_character_is_rejected() -> None:
    # GIVEN a real cursor with one character changed in the payload part
    cursor = encode_cursor(POSITION, SECRET)
    index = len(cursor) - 5
    flipped = cursor[:index] + ("A" if cursor[index] != "A" else "B") + cursor[index + 1:]

    # WHEN / THEN it is refused
    _assert_cursor_rejected(flipped)


@pytest.mark.parametrize("garbage", ["", "x", "not-a-cursor!!", "%%%%", "A" * 40, "😀"])
def test_garbage_is_rejected(garbage: str) -> None:
    # GIVEN text that was never a cursor WHEN it is decoded THEN it is a 422 on `cursor`
    _assert_cursor_rejected(garbage)


def test_a_signed_non_object_is_rejected() -> None:
    # GIVEN a correctly signed payload that is not a JSON object
    cursor = encode_cursor([1, 2, 3], SECRET)  # type: ignore[arg-type]

    # WHEN / THEN it is refused all the same
    _assert_cursor_rejected(cursor)
