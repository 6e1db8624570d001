"""Duplicate rules: normalised keys, reasons, scores and merge choices (pure functions)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from functions.merges import rules


def contact(**fields: Any) -> rules.ContactKeys:
    values = {"id": "C", "email": None, "first_name": None, "last_name": None, "company_id": None, "phone": None}
    return rules.ContactKeys.of(SimpleNamespace(**{**values, **fields}))


def company(**fields: Any) -> rules.CompanyKeys:
    return rules.CompanyKeys.of(SimpleNamespace(**{"id": "K", "name": "X", "domain": None, **fields}))


# ---- keys ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("email", "key"), [
    ("Ann.Lee+crm@Gmail.com", "annlee@gmail.com"),
    ("annlee@gmail.com", "annlee@gmail.com"),
    ("a.n.n.l.e.e+x+y@gmail.com", "annlee@gmail.com"),
    ("+tag@example.com", None),  # nothing left of the local part
    ("not-an-email", None),
    (None, None),
])
def test_email_key_ignores_case_dots_and_tags_in_the_local_part(email: str | None, key: str | None) -> None:
    # GIVEN an email WHEN its key is computed THEN case, dots and +tags of the local part do not count
    assert rules.email_key(email) == key


@pytest.mark.parametrize(("phone", "key"), [
    ("+44 20 7946 0958", "079460958"),
    ("020 7946 0958", "079460958"),  # the national form of the same number
    ("(555) 010-0100 x12", "550100100"),  # the extension does not count
    ("555 0100 ext. 7", "5550100"),
    ("12 34", None),  # too short to identify anyone
    (None, None),
])
def test_phone_key_is_the_last_digits_before_any_extension(phone: str | None, key: str | None) -> None:
    # GIVEN a phone number WHEN its key is computed THEN only its trailing digits count
    assert rules.phone_key(phone) == key


@pytest.mark.parametrize(("name", "key"), [
    ("Acme, Inc.", "acme"),
    ("ACME Inc", "acme"),
    ("A.C.M.E. Co., Ltd.", "acme"),
    ("Acme GmbH", "acme"),
    ("Acme Incubator", "acme incubator"),  # only whole trailing words are legal forms
    ("Zoë & Partners LLC", "zoe partners"),
    ("O'Brien Holdings", "obrien holdings"),
    ("Co Ltd", "co"),  # a name that is all legal form keeps its first word
    ("   ", None),
])
def test_company_name_key_drops_punctuation_accents_and_legal_forms(name: str, key: str | None) -> None:
    # GIVEN a company name WHEN its key is computed THEN spelling variants of one name agree
    assert rules.company_name_key(name) == key


@pytest.mark.parametrize(("domain", "root"), [
    ("acme.com", "acme"), ("eu.acme.com", "acme"), ("acme.co.uk", "acme"), ("acme.de", "acme"),
    ("shop.acme.com.au", "acme"), ("localhost", None), (None, None),
])
def test_domain_root_is_the_name_before_the_public_suffix(domain: str | None, root: str | None) -> None:
    # GIVEN a domain WHEN its root is computed THEN subdomains and country suffixes do not count
    assert rules.domain_root(domain) == root


# ---- reasons and scores -------------------------------------------------------------------------------------
def test_the_same_email_is_the_strongest_contact_reason() -> None:
    # GIVEN two contacts with one email (a deliberate duplicate)
    a, b = contact(id="A", email="ann@example.com"), contact(id="B", email="Ann@Example.com")

    # WHEN they are compared THEN the reason is the same email, scored near certain
    assert rules.contact_reasons(a, b) == ["same_email"]
    assert rules.score(["same_email"]) == 0.95


def test_gmail_style_variants_are_similar_emails() -> None:
    # GIVEN two spellings of one mailbox
    a, b = contact(id="A", email="ann.lee+crm@gmail.com"), contact(id="B", email="annlee@gmail.com")

    # WHEN they are compared THEN they are similar, not the same
    assert rules.contact_reasons(a, b) == ["similar_email"]


def test_same_name_counts_only_at_the_same_company() -> None:
    # GIVEN two "Ann Lee"s, at one company and at none
    at_acme = [contact(id="A", first_name="Ann", last_name="Lee", company_id="K"),
               contact(id="B", first_name=" ann ", last_name="LEE", company_id="K")]
    nowhere = [contact(id="A", first_name="Ann", last_name="Lee"), contact(id="B", first_name="Ann", last_name="Lee")]

    # WHEN they are compared
    # THEN the same name at the same company is a reason, a common name alone is not
    assert rules.contact_reasons(*at_acme) == ["same_name_and_company"]
    assert rules.contact_reasons(*nowhere) == []
    assert rules.score([]) == 0


def test_same_local_part_at_the_same_company() -> None:
    # GIVEN one person's addresses at two of their company's domains
    a = contact(id="A", email="j.smith@acme.com", company_id="K")
    b = contact(id="B", email="jsmith@acme.io", company_id="K")

    # WHEN compared THEN the shared local part at the same company is the reason
    assert rules.contact_reasons(a, b) == ["same_local_part_at_company"]
    # AND at different companies it is no reason at all
    assert rules.contact_reasons(a, contact(id="C", email="jsmith@acme.io", company_id="L")) == []


def test_same_phone_with_the_same_name_adds_up() -> None:
    # GIVEN two contacts with one phone number (international and national forms) and one name
    a = contact(id="A", first_name="Ann", last_name="Lee", phone="+44 20 7946 0958")
    b = contact(id="B", first_name="Ann", last_name="Lee", phone="020 7946 0958")

    # WHEN compared
    reasons = rules.contact_reasons(a, b)

    # THEN the phone is the reason, and the name makes it surer than the phone alone
    assert reasons == ["same_phone", "same_full_name"]
    assert rules.score(reasons) > rules.score(["same_phone"]) == 0.6
    # AND the name alone would not be enough
    assert rules.score(["same_full_name"]) == 0


def test_independent_reasons_combine_below_one() -> None:
    # GIVEN every contact reason at once WHEN scored THEN the score rises with each, and stays within 0..1
    reasons = ["similar_email", "same_name_and_company", "same_phone"]
    assert rules.score(reasons[:1]) < rules.score(reasons[:2]) < rules.score(reasons) < 1


def test_companies_with_one_name_and_domain_root() -> None:
    # GIVEN "Acme, Inc." at acme.com and "ACME" at acme.co.uk
    a, b = company(id="A", name="Acme, Inc.", domain="acme.com"), company(id="B", name="ACME", domain="acme.co.uk")

    # WHEN compared THEN both reasons are given, strongest first
    assert rules.company_reasons(a, b) == ["same_name", "same_domain_root"]
    assert rules.score(["same_name", "same_domain_root"]) == pytest.approx(0.9)


def test_companies_with_the_same_domain() -> None:
    # GIVEN two companies on one domain under different names
    a, b = company(id="A", name="Acme", domain="acme.com"), company(id="B", name="Acme Labs", domain="acme.com")

    # WHEN compared THEN the same domain is the reason (not also the root)
    assert rules.company_reasons(a, b) == ["same_domain"]


# ---- merge choices ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kept", "merged", "choice", "result"), [
    ("Ann", "Anne", None, "Ann"),  # default: the kept value
    (None, "Anne", None, "Anne"),  # ... unless it is empty
    ("", "Anne", None, "Anne"),
    ([], ["vip"], None, ["vip"]),
    ("Ann", "Anne", "merge", "Anne"),  # asked for
    (None, "Anne", "keep", None),  # asked for, even empty
    ("Ann", None, "merge", None),
])
def test_choose_takes_the_kept_value_filling_empty_ones(kept: Any, merged: Any, choice: Any, result: Any) -> None:
    # GIVEN two values and an optional choice WHEN chosen THEN the survivor's value follows the rule
    assert rules.choose(kept, merged, choice) == result


def test_custom_fields_merge_key_by_key() -> None:
    # GIVEN custom values of both records, one choice, and a key no longer defined
    kept = {"tier": "gold", "score": None, "gone": 1}
    merged = {"tier": "silver", "score": 7, "region": "eu", "gone": 2}

    # WHEN merged
    result = rules.merge_custom(kept, merged, {"region": "keep"}, allowed={"tier", "score", "region"})

    # THEN kept values stay, empty ones are filled, a choice is honoured, undefined keys are left alone
    assert result == {"tier": "gold", "score": 7, "gone": 1}
