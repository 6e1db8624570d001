"""Deal rules (pure): exact amounts in a currency's minor units, and what entering a stage does to a deal."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from functions.deals.currencies import minor_units
from shared.errors import ValidationFailed

# DECIMAL(19,4) holds 15 digits before the point; 14 keep every amount, and sums of many, within the
# 64-bit integers SQLite stores them in (layers.db.base.Money), so both databases answer the same.
MAX_INTEGER_DIGITS = 14
STORED_PLACES = 4
_AMOUNT = re.compile(r"^(\d+)(?:\.(\d+))?$")


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET  # "the request did not mention it", unlike an explicit null


def parse_amount(value: Any) -> Decimal:
    """A decimal string ("1250.50") or an integer; JSON floats are refused, they are not exact."""
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('send amounts as decimal strings, e.g. "1250.50" (floats are not exact)')
    else:
        text = str(value).strip()
    match = _AMOUNT.match(text)
    if match is None:
        raise ValueError('must be a non-negative decimal number as a string, e.g. "1250.50"')
    whole, fraction = match.group(1).lstrip("0"), (match.group(2) or "").rstrip("0")
    if len(whole) > MAX_INTEGER_DIGITS:
        raise ValueError(f"at most {MAX_INTEGER_DIGITS} digits before the decimal point")
    if len(fraction) > STORED_PLACES:
        raise ValueError(f"at most {STORED_PLACES} decimal places")
    return Decimal(text)


def parse_currency(value: Any) -> str:
    """An ISO 4217 code with minor units, upper-cased."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 4217 currency code")
    code = value.strip().upper()
    if minor_units(code) is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code with minor units")
    return code


def check_amount(amount: Decimal | None, currency: str | None) -> None:
    """An amount needs a currency, and no more decimal places than the currency's minor unit."""
    if amount is None:
        return
    if currency is None:
        raise _invalid("currency", "required when amount is set", "missing")
    places = minor_units(currency)
    if places is None:
        raise _invalid("currency", "not an ISO 4217 currency code with minor units", "currency")
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise _invalid("amount", f"{currency} amounts have at most {places} decimal places", "scale")


def format_amount(amount: Decimal, currency: str | None) -> str:
    """The amount as an exact string in the currency's minor units ("12.50" USD, "1250" JPY)."""
    places = minor_units(currency) if currency is not None else None
    return format(amount.quantize(Decimal(1).scaleb(-(STORED_PLACES if places is None else places))), "f")


@dataclass(frozen=True)
class Placement:
    """Where a deal stands: the kind of its stage (None while it is being created) and its close fields."""

    kind: str | None
    closed_at: datetime | None = None
    lost_reason: str | None = None


def enter_stage(current: Placement, *, target_kind: str, lost_reason: str | _Unset | None = UNSET,
                now: datetime) -> dict[str, Any]:
    """The `closed_at` and `lost_reason` of a deal entering, or staying in, a stage of `target_kind`.

    A lost stage needs a lost reason (given now, or kept from a lost stage before); entering a won or
    lost stage closes the deal now (moving between stages of the same closed kind keeps the date);
    an open stage reopens it, clearing both.
    """
    reason = current.lost_reason if lost_reason is UNSET else lost_reason
    if target_kind == "lost":
        if not reason:
            raise _invalid("lost_reason", "required to move a deal to a lost stage", "missing")
        kept = current.closed_at if current.kind == "lost" else None
        return {"closed_at": kept or now, "lost_reason": reason}
    if lost_reason is not UNSET and lost_reason is not None:
        raise _invalid("lost_reason", "only a deal in a lost stage has a lost reason", "not_lost")
    if target_kind == "won":
        kept = current.closed_at if current.kind == "won" else None
        return {"closed_at": kept or now, "lost_reason": None}
    return {"closed_at": None, "lost_reason": None}


def require_stage_of(stage_pipeline_id: str | None, pipeline_id: str, *, field: str = "stage_id") -> None:
    """The stage must be a live stage of the deal's (new) pipeline."""
    if stage_pipeline_id != pipeline_id:
        raise _invalid(field, "not a live stage of the deal's pipeline", "stage")


def contacts_after(
    current_ids: list[str], current_primary: str | None, *,
    contact_ids: list[str] | _Unset = UNSET, primary_contact_id: str | _Unset | None = UNSET,
) -> tuple[list[str], str | None]:
    """A deal's contacts after a write: in id order, each once, the primary one among them.

    `contact_ids` replaces the list; `primary_contact_id` names the primary (adding it when missing)
    or, as null, clears it. A primary contact dropped from the list stops being primary.
    """
    ids = set(current_ids if contact_ids is UNSET else contact_ids)
    if primary_contact_id is UNSET:
        primary = current_primary if current_primary in ids else None
    else:
        primary = primary_contact_id
    if primary is not None:
        ids.add(primary)
    return sorted(ids), primary


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message, "code": code}])
