"""Normalisation rules for values that identify records (pure functions, no I/O)."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(value: str) -> str:
    """`HTTPS://www.Acme.com:443/about` → `acme.com`. Raises ValueError when it is not a domain."""
    text = value.strip().lower()
    if not text:
        raise ValueError("must not be empty")
    host = urlsplit(text if "//" in text else "//" + text).hostname or ""
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("is not a valid domain") from None
    labels = host.split(".")
    if len(labels) < 2 or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("is not a valid domain")
    return host


def normalize_tags(values: list[str]) -> list[str]:
    """Trimmed, de-duplicated (first spelling wins, case-insensitively), order kept."""
    seen: set[str] = set()
    tags = []
    for value in values:
        tag = value.strip()
        if not tag:
            raise ValueError("tags must not be blank")
        if len(tag) > 64:
            raise ValueError("a tag is at most 64 characters")
        if tag.lower() not in seen:
            seen.add(tag.lower())
            tags.append(tag)
    return tags


# The lookahead asks for three digits in the number itself: "(((" or "..." is not a phone number.
_PHONE = re.compile(r"^\+?(?=(?:[ ().\-]*[0-9]){3})[0-9 ().\-]{3,40}(?:\s*(?:x|ext\.?)\s*[0-9]{1,8})?$", re.IGNORECASE)


def normalize_email(value: str) -> str:
    """Trimmed, validated (syntax only, no DNS) and lower-cased."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def normalize_phone(value: str) -> str:
    text = " ".join(value.split())
    if not _PHONE.match(text):
        raise ValueError("is not a phone number")
    return text
