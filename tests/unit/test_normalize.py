"""Normalisation of the values that identify records."""
from __future__ import annotations

import pytest

from shared.normalize import normalize_domain, normalize_email, normalize_phone, normalize_tags


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("HTTPS://www.Acme.com:443/about?x", "acme.com"),
        ("acme.com", "acme.com"),
        ("  ACME.com  ", "acme.com"),
        ("acme.com.", "acme.com"),  # the DNS root dot
        ("www.acme.co.uk", "acme.co.uk"),
        ("http://sub.acme.com/path#frag", "sub.acme.com"),
        ("//acme.com", "acme.com"),
        ("Bücher.example", "xn--bcher-kva.example"),  # IDN → punycode
        ("https://www.münchen.de/", "xn--mnchen-3ya.de"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),  # already punycode stays as it is
    ],
)
def test_domain_is_normalised(given: str, expected: str) -> None:
    # GIVEN a domain as people type it WHEN it is normalised THEN it is the bare host
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    "given",
    ["", "   ", "acme", "localhost", "-acme.com", "acme-.com", "a..com", "http://", "exa mple.com",
     "acme_corp.com", "a" * 64 + ".com", ("a" * 60 + ".") * 5 + "com"],
)
def test_invalid_domain_raises(given: str) -> None:
    # GIVEN text that is not a domain WHEN it is normalised THEN it is refused
    with pytest.raises(ValueError):
        normalize_domain(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("Ada.Lovelace+crm@Example.com", "ada.lovelace+crm@example.com"),
    ],
)
def test_email_is_trimmed_and_lower_cased(given: str, expected: str) -> None:
    # GIVEN an email with spaces and capitals WHEN normalised THEN trimmed and lower case
    assert normalize_email(given) == expected


@pytest.mark.parametrize("given", ["", "ada", "ada@", "@example.com", "ada@example", "ada lovelace@example.com",
                                   "ada@@example.com"])
def test_invalid_email_raises(given: str) -> None:
    # GIVEN text that is not an email WHEN normalised THEN ValueError
    with pytest.raises(ValueError):
        normalize_email(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+1 (555) 010-9999", "+1 (555) 010-9999"),
        ("  +44  20 7946\t0958 ", "+44 20 7946 0958"),  # runs of whitespace collapse to one space
        ("555-0100 ext. 12", "555-0100 ext. 12"),
        ("555.0100 x12", "555.0100 x12"),
        ("911", "911"),
    ],
)
def test_phone_is_accepted_with_whitespace_collapsed(given: str, expected: str) -> None:
    # GIVEN a phone number as typed WHEN normalised THEN kept, with whitespace collapsed
    assert normalize_phone(given) == expected


@pytest.mark.parametrize("given", ["", "   ", "abc", "12", "555-CALL-NOW", "(((", "...", "- - -", "((( x123",
                                   "1" * 41, "555 ext 123456789"])
def test_invalid_phone_raises(given: str) -> None:
    # GIVEN text that is not a phone number (too short, letters, no digits) WHEN normalised THEN ValueError
    with pytest.raises(ValueError):
        normalize_phone(given)


def test_tags_are_trimmed_and_deduplicated_keeping_the_first_spelling_and_order() -> None:
    # GIVEN tags with spaces and case-insensitive duplicates
    given = [" VIP ", "partner", "vip", "Partner", "ml", "Vip"]

    # WHEN normalised
    tags = normalize_tags(given)

    # THEN each tag appears once, spelled as first seen, in first-seen order
    assert tags == ["VIP", "partner", "ml"]


def test_no_tags_is_fine() -> None:
    # GIVEN / WHEN / THEN an empty list stays empty
    assert normalize_tags([]) == []


def test_a_tag_of_exactly_64_characters_is_accepted() -> None:
    # GIVEN a tag at the limit WHEN normalised THEN it is kept
    assert normalize_tags(["x" * 64]) == ["x" * 64]


@pytest.mark.parametrize("given", [[""], ["ok", "   "], ["x" * 65], ["ok", " " + "y" * 65 + " "]])
def test_blank_or_too_long_tags_raise(given: list[str]) -> None:
    # GIVEN a blank tag or one over 64 characters WHEN normalised THEN ValueError
    with pytest.raises(ValueError):
        normalize_tags(given)
