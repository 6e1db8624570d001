"""Rules of a custom field definition (pure: no I/O)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from layers.records.custom import SELECT_TYPES, UNIQUE_TYPES
from shared.errors import ValidationFailed

MAX_OPTION_LENGTH = 100
MAX_OPTIONS = 500
MAX_FIELDS_PER_OBJECT = 200  # every write reads them all once: keep that cheap
IMMUTABLE = ("object_type", "key", "type")


def _invalid(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message, "code": code}])


def normalize_options(options: list[str]) -> list[str]:
    """Trimmed, non-blank, at most 100 characters, and distinct even ignoring case (values are matched
    to options case-insensitively); order kept. Raises ValueError (pydantic reports it at `options`)."""
    seen: set[str] = set()
    result = []
    for option in options:
        text = option.strip()
        if not text:
            raise ValueError("options must not be blank")
        if len(text) > MAX_OPTION_LENGTH:
            raise ValueError(f"an option is at most {MAX_OPTION_LENGTH} characters")
        if text.lower() in seen:
            raise ValueError(f"option {text!r} is listed twice (options are compared ignoring case)")
        seen.add(text.lower())
        result.append(text)
    return result


def check_shape(*, field_type: str, unique: bool, options: list[str]) -> None:
    """What a definition of `field_type` may say: options only (and always) for selects; unique only
    for types whose values can be compared as one string or number."""
    if field_type in SELECT_TYPES and not options:
        raise _invalid("options", f"a {field_type} field needs at least one option", "missing")
    if field_type not in SELECT_TYPES and options:
        raise _invalid("options", f"a {field_type} field takes no options", "not_allowed")
    if unique and field_type not in UNIQUE_TYPES:
        raise _invalid("unique", f"only {', '.join(sorted(UNIQUE_TYPES))} fields can be unique", "not_allowed")


def check_key_free(key: str, builtin_names: Iterable[str]) -> None:
    """A custom key may not shadow a built-in property (imports and exports map columns by name)."""
    if key in set(builtin_names):
        raise _invalid("key", f"{key!r} is a built-in property of this object", "reserved")


def check_immutable(current: dict[str, Any], changes: dict[str, Any]) -> None:
    """Object type, key and type never change (values are stored and indexed under them); sending
    the current value back is fine."""
    errors = [{"field": name, "message": "cannot be changed", "code": "immutable"}
              for name in IMMUTABLE if name in changes and changes[name] != current[name]]
    if errors:
        raise ValidationFailed("object_type, key and type cannot be changed", errors=errors)


def check_no_nulls(changes: dict[str, Any]) -> None:
    errors = [{"field": name, "message": "cannot be null", "code": "null"}
              for name in ("label", "required", "unique", "options", *IMMUTABLE)
              if name in changes and changes[name] is None]
    if errors:
        raise ValidationFailed("only description can be cleared", errors=errors)


def removed_options(before: Iterable[str], after: Iterable[str]) -> list[str]:
    """Options dropped by an edit (exact spelling: a stored value is spelled like its option)."""
    kept = set(after)
    return [option for option in before if option not in kept]
