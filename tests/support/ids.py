"""Valid ids that stand for a test's labels ("a", "bulk-3"): id columns take only ids (layers/db/base.py)."""
from __future__ import annotations

import hashlib

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as ULIDs spell it
_LABELS: dict[str, str] = {}


def named_id(label: str) -> str:
    """The same id for the same label (in this process, `label_of` reads it back)."""
    number = int.from_bytes(hashlib.sha256(label.encode()).digest()[:17], "big") >> 6  # 130 bits: 26 characters
    value = "".join(_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(26)))
    _LABELS[value] = label
    return value


def label_of(value: str) -> str:
    """The label `named_id` made `value` from (`value` itself when it was not made from one)."""
    return _LABELS.get(value, value)
