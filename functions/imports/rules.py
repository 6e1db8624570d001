"""Pure rules of an import: reading a CSV's head, suggesting a mapping, turning a row into an input."""
from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.errors import AppError, ValidationFailed

OBJECT_TYPES = ("contacts", "companies", "deals")
# The column an import matches existing records on (contacts, companies) or cannot do without (deals).
KEY_PROPERTIES = {"contacts": "email", "companies": "domain", "deals": "name"}
DELIMITERS = (",", ";", "\t")
SAMPLE_BYTES = 64 * 1024  # enough for a header and a preview; a header longer than this is refused
PREVIEW_ROWS = 20
CUSTOM_PREFIX = "custom_fields."
ACTIVE = ("queued", "running")
FINISHED = ("completed", "failed", "cancelled")
# The stalled-import sweep: a running import commits a chunk every few seconds, so an hour without one
# means its job is gone (its worker died on every try and the queue dead-lettered it); a queued one that
# never started in a day likewise. The worker's own give-up (`on_dead_letter`) is the usual path.
STALLED_RUNNING_AFTER = timedelta(hours=1)
STALLED_QUEUED_AFTER = timedelta(days=1)

# Header spellings people use, normalised (lower case, letters and digits only).
ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "mail", "emails", "workemail", "primaryemail"),
    "first_name": ("firstname", "givenname", "forename", "first"),
    "last_name": ("lastname", "surname", "familyname", "last"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone"),
    "job_title": ("jobtitle", "title", "position", "role"),
    "lifecycle_stage": ("lifecyclestage", "stage", "lifecycle"),
    "name": ("name", "companyname", "dealname", "deal", "organization", "organisation"),
    "domain": ("domain", "website", "url", "companydomain", "web"),
    "employee_count": ("employeecount", "employees", "numberofemployees", "headcount", "size"),
    "amount": ("amount", "value", "dealvalue", "dealamount"),
    "expected_close_date": ("expectedclosedate", "closedate", "expectedclose"),
    "tags": ("tags", "labels"),
}


class NotCsv(ValidationFailed):
    slug, title = "not-csv", "The file is not a CSV file"


@dataclass(frozen=True)
class CsvHead:
    header: list[str]
    delimiter: str
    data_offset: int  # the byte where the first row after the header starts
    has_rows: bool | None  # None: the sample ends before any row does (a large file)


def inspect_sample(sample: bytes, *, size: int) -> CsvHead:
    """The header of a CSV from the first bytes of the file; NotCsv when it cannot be one."""
    if not sample.strip(b" \t\r\n\xef\xbb\xbf"):
        raise _not_csv("the file is empty")
    if b"\x00" in sample:
        raise _not_csv("the file is binary, not CSV text (a spreadsheet must be saved as CSV)")
    whole = len(sample) >= size
    bom = len(codecs.BOM_UTF8) if sample.startswith(codecs.BOM_UTF8) else 0
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(sample[bom:], final=whole)
    except UnicodeDecodeError:
        raise _not_csv("the file is not UTF-8 text (save the CSV as UTF-8)") from None
    if not whole and "\n" not in text and "\r" not in text:
        raise _not_csv(f"the header row is longer than {SAMPLE_BYTES} bytes")
    delimiter = sniff_delimiter(text)
    records = OffsetCsv(_lines_of(text), start=bom, delimiter=delimiter)
    try:
        header = [cell.strip() for cell in next(iter(records), [])]
    except csv.Error as exc:
        raise _not_csv(f"the header row cannot be read: {exc}") from None
    if not any(header):
        raise _not_csv("the first row must name the columns")
    named = [h for h in header if h]
    duplicated = sorted({h for h in named if named.count(h) > 1})
    if duplicated:
        raise _not_csv(f"column names must be unique: {', '.join(duplicated)}")
    data_offset = records.offset
    has_rows: bool | None = None
    try:
        for cells in records:
            if any(c.strip() for c in cells):
                has_rows = True
                break
    except csv.Error:
        has_rows = True  # a row that reads badly is rejected when it is imported
    if has_rows is None and whole:
        raise _not_csv("the file has a header but no rows")
    return CsvHead(header, delimiter, data_offset, has_rows)


def sniff_delimiter(text: str) -> str:
    """`,`, `;` or tab: whichever the first line (outside quotes) has most of; `,` when none."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in ("\n", "\r"):
            break
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class OffsetCsv:
    """csv.reader over text lines that knows the byte offset where the next record starts.

    csv.reader pulls a line only when the record it is reading needs one, so after each record the
    bytes counted so far end exactly at that record: a checkpoint a ranged GET can resume from."""

    def __init__(self, lines: Iterable[str], *, start: int, delimiter: str) -> None:
        self.offset = start
        self._reader = csv.reader(self._count(lines), delimiter=delimiter)

    def _count(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            self.offset += len(line.encode("utf-8"))
            yield line

    def __iter__(self) -> Iterator[list[str]]:
        return self._reader


def _lines_of(text: str) -> Iterator[str]:
    yield from io.StringIO(text, newline="")  # \n, \r\n or \r, kept: what a TextIOWrapper(newline="") yields


def normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def suggest_mapping(header: list[str], properties: Iterable[str]) -> dict[str, str | None]:
    """Each column → the property its name means (case and punctuation ignored), else None; a property
    is suggested for one column at most."""
    lookup: dict[str, str] = {}
    for prop in properties:
        bare = prop.removeprefix(CUSTOM_PREFIX)
        for spelling in (normalized(bare), *ALIASES.get(prop, ())):
            lookup.setdefault(spelling, prop)
    suggested: dict[str, str | None] = {}
    taken: set[str] = set()
    for column in header:
        if not column:
            continue
        match = lookup.get(normalized(column))
        suggested[column] = match if match is not None and match not in taken else None
        if match is not None:
            taken.add(match)
    return suggested


def check_mapping(mapping: dict[str, str | None], *, header: list[str], properties: Iterable[str],
                  object_type: str) -> dict[str, str]:
    """The mapping's mapped columns, or a 422 naming each column or property at fault."""
    known = set(properties)
    errors: list[dict[str, Any]] = []
    columns = set(header)
    used: dict[str, str] = {}
    for column, prop in mapping.items():
        if column not in columns or not column:
            errors.append({"field": f"mapping.{column}", "message": "no such column in the file", "code": "unknown"})
        elif prop is not None and prop not in known:
            errors.append({"field": f"mapping.{column}", "message": f"unknown property {prop!r}", "code": "unknown"})
        elif prop is not None and prop in used.values():
            errors.append({"field": f"mapping.{column}", "message": f"{prop} is mapped twice", "code": "duplicate"})
        elif prop is not None:
            used[column] = prop
    key = KEY_PROPERTIES[object_type]
    if not errors and key not in used.values():
        errors.append({"field": "mapping", "message": f"a column must be mapped to {key}", "code": "missing"})
    if errors:
        raise ValidationFailed("the mapping does not fit the file", errors=errors)
    return used


@dataclass(frozen=True)
class RowInput:
    values: dict[str, Any]  # the input for the record service (blank cells left out)
    errors: list[dict[str, Any]]  # cells that could not be read as their property's type


def row_input(header: list[str], cells: list[str], mapping: dict[str, str], kinds: dict[str, str]) -> RowInput:
    """One CSV row → a create/update input. Blank cells are left out, so an update keeps what is there."""
    errors: list[dict[str, Any]] = []
    extra = [c for c in cells[len(header):] if c.strip()]
    if extra:
        errors.append({"field": "row", "message": f"{len(cells)} cells for {len(header)} columns",
                       "code": "columns"})
    values: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for position, column in enumerate(header):
        prop = mapping.get(column)
        text = cells[position].strip() if position < len(cells) else ""
        if prop is None or not text:
            continue
        try:
            value = coerce_cell(text, kinds.get(prop, "string"))
        except ValueError as exc:
            errors.append({"field": prop, "message": str(exc), "code": "type"})
            continue
        if prop.startswith(CUSTOM_PREFIX):
            custom[prop.removeprefix(CUSTOM_PREFIX)] = value
        else:
            values[prop] = value
    if custom:
        values["custom_fields"] = custom
    return RowInput(values, errors)


_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}


def coerce_cell(text: str, kind: str) -> Any:
    """A cell's text as the JSON value the API takes for the property (the schema still validates it)."""
    if kind == "integer":
        return int(text) if re.fullmatch(r"-?\d+", text) else text
    if kind == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            return text
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "boolean":
        lowered = text.lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError("must be true or false (yes/no, 1/0)")
    if kind == "array":
        return [part.strip() for part in re.split(r"[;,|]", text) if part.strip()]
    return text


def reject_reason(error: AppError) -> str:
    """A failed row's reason, in one line: each field at fault, else the problem's detail."""
    fields = []
    for item in error.errors or []:
        where = re.sub(r"^inputs\.\d+\.?", "", str(item.get("field", ""))) or "row"
        fields.append(f"{where}: {item.get('message')}")
    return "; ".join(fields) if fields else error.detail


def cell_errors_reason(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


def _not_csv(message: str) -> NotCsv:
    return NotCsv(message, errors=[{"field": "file", "message": message, "code": "not_csv"}])
