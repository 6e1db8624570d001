"""Webhook signatures: `Webhook-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256 of `f"{t}.{body}"`.

The key is the whole secret string (`whsec_...`) as UTF-8. During a rotation two `v1=` values are
sent (new secret, then the previous one), so a receiver holding either secret accepts the delivery.
Receivers: `verify(secret, header, body)` — a constant-time compare, with a replay window.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

DEFAULT_TOLERANCE = 300  # seconds a signature stays acceptable (replay window)


def signature(secret: str, timestamp: int, body: bytes | str) -> str:
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw, hashlib.sha256).hexdigest()


def sign(secrets: str | Sequence[str], body: bytes | str, *, timestamp: int | None = None) -> str:
    """The Webhook-Signature header value: one `v1=` per secret, in the order given."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={signature(key, t, body)}" for key in keys)])


def verify(secret: str, header: str, body: bytes | str, tolerance: int = DEFAULT_TOLERANCE, *,
           now: float | None = None) -> bool:
    """True if any `v1=` in the header is this secret's signature of the body, made within `tolerance` s."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
