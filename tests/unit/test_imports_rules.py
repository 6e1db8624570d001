"""Import rules: reading a CSV's head, byte offsets to resume from, mapping suggestions, cell types."""
from __future__ import annotations

import io

import pytest

from functions.imports import rules
from shared.errors import ValidationFailed

BOM = "\ufeff".encode()


def test_the_header_delimiter_and_data_offset_are_read_from_the_sample() -> None:
    # GIVEN a semicolon CSV with a BOM and a quoted header cell
    data = BOM + b'Name;"E-mail; work"\r\nAda;ada@x.com\r\n'

    # WHEN its head is inspected
    head = rules.inspect_sample(data, size=len(data))

    # THEN the header, delimiter and first row's byte offset (after the BOM and the header) are right
    assert head.header == ["Name", "E-mail; work"] and head.delimiter == ";"
    assert data[head.data_offset:] == b"Ada;ada@x.com\r\n" and head.has_rows


@pytest.mark.parametrize("data", [b"", b"\r\n  \n", b"a,b\x00c\n1,2\n", b"name\n\xe9\n", b"name\n", b"a,a\n1,2\n",
                                  b",,\n1,2,3\n"])
def test_what_cannot_be_a_csv_is_refused(data: bytes) -> None:
    with pytest.raises(ValidationFailed) as refused:
        rules.inspect_sample(data, size=len(data))
    assert refused.value.errors and refused.value.errors[0]["code"] == "not_csv"


def test_offsets_resume_exactly_after_a_record_even_across_quoted_newlines() -> None:
    # GIVEN rows with quoted newlines, CRLF endings and multi-byte characters
    text = 'a,b\r\n"x\r\ny",1\r\nzoë,"2"\n"p""q",3\r\n'
    data = text.encode()
    reader = rules.OffsetCsv(io.StringIO(text, newline=""), start=0, delimiter=",")

    # WHEN records are read, noting the offset after each
    offsets = []
    for cells in reader:
        offsets.append((cells, reader.offset))

    # THEN reading again from each offset gives exactly the records after it
    for index, (_, offset) in enumerate(offsets):
        rest = data[offset:].decode()
        again = list(rules.OffsetCsv(io.StringIO(rest, newline=""), start=offset, delimiter=","))
        assert again == [cells for cells, _ in offsets[index + 1:]]
    assert offsets[1][0] == ["x\r\ny", "1"] and offsets[-1][1] == len(data)


def test_the_delimiter_is_sniffed_outside_quotes() -> None:
    assert rules.sniff_delimiter('"a,b,c";d;e\n1,2,3,4\n') == ";"
    assert rules.sniff_delimiter("a\tb\n") == "\t"
    assert rules.sniff_delimiter("email\n") == ","


def test_header_names_suggest_properties_case_and_punctuation_ignored() -> None:
    header = ["E-mail", "Email Address", "First Name", "SURNAME", "Tier", "Notes", ""]
    suggested = rules.suggest_mapping(header, ["email", "first_name", "last_name", "custom_fields.tier"])
    assert suggested == {"E-mail": "email", "Email Address": None, "First Name": "first_name",
                         "SURNAME": "last_name", "Tier": "custom_fields.tier", "Notes": None}


def test_a_mapping_needs_known_columns_and_properties_and_the_key_column() -> None:
    header = ["E-mail", "Name"]
    assert rules.check_mapping({"E-mail": "email", "Name": None}, header=header, properties=["email"],
                               object_type="contacts") == {"E-mail": "email"}
    bad: list[dict[str, str | None]] = [{"Name": "first_name"}, {"E-mail": "email", "Nope": None},
                                        {"E-mail": "email", "Name": "email"}]
    for mapping in bad:
        with pytest.raises(ValidationFailed):
            rules.check_mapping(mapping, header=header, properties=["email", "first_name"], object_type="contacts")


def test_a_row_becomes_an_input_with_typed_cells_and_blank_cells_left_out() -> None:
    kinds = {"employee_count": "integer", "tags": "array", "custom_fields.vip": "boolean", "name": "string"}
    mapping = {"N": "name", "E": "employee_count", "T": "tags", "V": "custom_fields.vip", "X": "domain"}
    given = rules.row_input(["N", "E", "T", "V", "X"], [" Acme ", "12", "a; b,c", "yes", ""], mapping, kinds)
    assert given.values == {"name": "Acme", "employee_count": 12, "tags": ["a", "b", "c"],
                            "custom_fields": {"vip": True}}
    assert given.errors == []
    bad = rules.row_input(["N", "V"], ["Acme", "maybe", "extra"], {"N": "name", "V": "custom_fields.vip"}, kinds)
    assert [e["code"] for e in bad.errors] == ["columns", "type"]


def test_a_preview_mapping_nested_too_deep_is_a_422_not_a_recursion() -> None:
    from functions.imports.service import parse_mapping

    # GIVEN the `mapping` query parameter as 50,000 open arrays WHEN read THEN it is refused like any non-object
    with pytest.raises(ValidationFailed):
        parse_mapping("[" * 50_000)
    assert parse_mapping('{"E-mail": "email", "Notes": null}') == {"E-mail": "email", "Notes": None}
