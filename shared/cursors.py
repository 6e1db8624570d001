"""Opaque pagination cursors: the keyset position, signed so clients cannot forge positions."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from shared.errors import ValidationFailed


def encode_cursor(position: dict[str, Any], secret: str) -> str:
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True, default=str).encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


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
