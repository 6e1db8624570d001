"""Duplicate detection and merge rules: normalised keys, reasons, scores, field choices (pure, no I/O).

The SQL in repository.py groups candidates on the same keys (built from the same character maps), and
these functions then decide, pair by pair, why two records look alike and how sure we are.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Punctuation in company names: these vanish ("A.C.M.E.", "O'Brien"), any other non-alphanumeric is a space.
NAME_DROPPED = (".", "'", "’")
# Legal forms stripped from the end of a company name, repeatedly ("Acme Co., Ltd." → "acme").
LEGAL_SUFFIXES = ("incorporated", "inc", "llc", "llp", "limited", "ltd", "gmbh", "ag", "sarl", "sas", "sa",
                  "srl", "spa", "bv", "nv", "plc", "corporation", "corp", "company", "co", "pty", "lp")
# Second-level labels under a country code that are not the company's own name (acme.co.uk → acme).
GENERIC_SECOND_LEVEL = ("co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc")
MIN_PHONE_DIGITS = 7
PHONE_TAIL = 9  # compare the last 9 digits: "+44 20 7946 0958" is "020 7946 0958"

Reason = Literal[
    "same_email", "similar_email", "same_name_and_company", "same_local_part_at_company", "same_phone",
    "same_full_name", "same_name", "same_domain", "same_domain_root",
]
# How strongly each reason alone says "the same person/company"; several combine as independent evidence.
WEIGHTS: dict[str, float] = {
    "same_email": 0.95,
    "similar_email": 0.85,
    "same_name_and_company": 0.8,
    "same_local_part_at_company": 0.7,
    "same_phone": 0.6,
    "same_domain": 0.95,
    "same_name": 0.75,
    "same_domain_root": 0.6,
}
# Supporting evidence only: two "Ann Lee"s are not duplicates, but the name makes other reasons surer.
SUPPORTING: dict[str, float] = {"same_full_name": 0.3}


def fold(value: str) -> str:
    """Lower-cased, accents removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", value)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.lower().split())


def full_name_key(first_name: str | None, last_name: str | None) -> str | None:
    name = fold(f"{first_name or ''} {last_name or ''}")
    return name or None


def email_parts(email: str | None) -> tuple[str, str] | None:
    if not email or "@" not in email:
        return None
    local, _, domain = email.lower().rpartition("@")
    return (local, domain) if local and domain else None


def local_key(email: str | None) -> str | None:
    """The local part without a +tag and without dots: `Ann.Lee+crm` → `annlee`."""
    parts = email_parts(email)
    if parts is None:
        return None
    local = parts[0].split("+", 1)[0].replace(".", "")
    return local or None


def email_key(email: str | None) -> str | None:
    """Gmail-style: case, dots and +tags in the local part ignored (`Ann.Lee+x@ex.com` → `annlee@ex.com`)."""
    parts = email_parts(email)
    local = local_key(email)
    return f"{local}@{parts[1]}" if parts and local else None


def phone_key(phone: str | None) -> str | None:
    """The digits before any extension, last PHONE_TAIL of them; None when too short to identify anyone."""
    if not phone:
        return None
    number = re.split(r"[xe]", phone.lower(), maxsplit=1)[0]
    digits = re.sub(r"[^0-9]", "", number)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    return digits[-PHONE_TAIL:]


def company_name_key(name: str | None) -> str | None:
    """`Acme, Inc.` / `ACME Inc` / `Acme` → `acme`: punctuation and trailing legal forms removed."""
    if not name:
        return None
    text = fold(name)
    for mark in NAME_DROPPED:
        text = text.replace(mark, "")
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words) or None


def domain_root(domain: str | None) -> str | None:
    """The name part of a domain: `eu.acme.com`, `acme.de` and `acme.co.uk` → `acme`."""
    if not domain:
        return None
    labels = domain.lower().strip(".").split(".")
    if len(labels) < 2:
        return None
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in GENERIC_SECOND_LEVEL:
        return labels[-3]
    return labels[-2]


@dataclass(frozen=True)
class ContactKeys:
    id: str
    email: str | None
    name: str | None
    company_id: str | None
    phone: str | None

    @classmethod
    def of(cls, record: Any) -> ContactKeys:
        return cls(record.id, (record.email or "").lower() or None, full_name_key(record.first_name, record.last_name),
                   record.company_id, phone_key(record.phone))


@dataclass(frozen=True)
class CompanyKeys:
    id: str
    domain: str | None
    name: str | None
    root: str | None

    @classmethod
    def of(cls, record: Any) -> CompanyKeys:
        domain = (record.domain or "").lower() or None
        return cls(record.id, domain, company_name_key(record.name), domain_root(domain))


def contact_reasons(a: ContactKeys, b: ContactKeys) -> list[str]:
    reasons: list[str] = []
    if a.email and a.email == b.email:
        reasons.append("same_email")
    elif email_key(a.email) and email_key(a.email) == email_key(b.email):
        reasons.append("similar_email")
    same_company = a.company_id is not None and a.company_id == b.company_id
    same_name = a.name is not None and a.name == b.name
    if same_name and same_company:
        reasons.append("same_name_and_company")
    emails_alike = bool(reasons) and reasons[0] in ("same_email", "similar_email")
    if (same_company and not emails_alike and local_key(a.email) is not None
            and local_key(a.email) == local_key(b.email)):
        reasons.append("same_local_part_at_company")
    if a.phone and a.phone == b.phone:
        reasons.append("same_phone")
    if reasons and same_name and not same_company:
        reasons.append("same_full_name")
    return reasons


def company_reasons(a: CompanyKeys, b: CompanyKeys) -> list[str]:
    reasons: list[str] = []
    if a.domain and a.domain == b.domain:
        reasons.append("same_domain")
    elif a.root and a.root == b.root:
        reasons.append("same_domain_root")
    if a.name and a.name == b.name:
        reasons.append("same_name")
    return sorted(reasons, key=lambda r: -WEIGHTS[r])


def score(reasons: list[str]) -> float:
    """1 − Π(1 − wᵢ): independent pieces of evidence; 0 when nothing but supporting evidence is left."""
    if not any(r in WEIGHTS and r not in SUPPORTING for r in reasons):
        return 0.0
    doubt = 1.0
    for reason in reasons:
        doubt *= 1 - SUPPORTING.get(reason, WEIGHTS.get(reason, 0.0))
    return round(1 - doubt, 3)


# ---- merging ---------------------------------------------------------------------------------------------
Choice = Literal["keep", "merge"]


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def choose(kept: Any, merged: Any, choice: Choice | None) -> Any:
    """The survivor's value: the one asked for, else the kept one, unless it is empty."""
    if choice == "merge":
        return merged
    if choice == "keep":
        return kept
    return merged if is_empty(kept) and not is_empty(merged) else kept


def merge_custom(
    kept: Mapping[str, Any], merged: Mapping[str, Any], choices: Mapping[str, Choice], *, allowed: set[str]
) -> dict[str, Any]:
    """Custom field values key by key, the same way as built-in fields (keys in `allowed` only)."""
    result = dict(kept)
    for key in sorted((set(kept) | set(merged)) & allowed):
        value = choose(kept.get(key), merged.get(key), choices.get(key))
        if is_empty(value):
            result.pop(key, None)
        else:
            result[key] = value
    return result
