"""Webhook signatures, checked the way a receiver would."""
from __future__ import annotations

from functions.webhooks.signing import sign, signature, verify

BODY = b'{"id":"01J","event":{"type":"contact.created"}}'
NOW = 1_760_000_000


def test_a_signature_verifies_with_its_secret_only() -> None:
    # GIVEN a signed body
    header = sign("whsec_a", BODY, timestamp=NOW)

    # THEN the secret verifies it, another secret or another body does not
    assert header == f"t={NOW},v1={signature('whsec_a', NOW, BODY)}"
    assert verify("whsec_a", header, BODY, now=NOW)
    assert not verify("whsec_b", header, BODY, now=NOW)
    assert not verify("whsec_a", header, BODY + b" ", now=NOW)


def test_old_or_future_signatures_are_refused() -> None:
    # GIVEN a signature made at NOW
    header = sign("whsec_a", BODY, timestamp=NOW)

    # THEN it is good within the tolerance, and refused outside it
    assert verify("whsec_a", header, BODY, now=NOW + 300)
    assert not verify("whsec_a", header, BODY, now=NOW + 301)
    assert not verify("whsec_a", header, BODY, now=NOW - 301)
    assert verify("whsec_a", header, BODY, tolerance=3600, now=NOW + 3000)


def test_two_secrets_during_a_rotation() -> None:
    # GIVEN a header signed with the new and the previous secret
    header = sign(["whsec_new", "whsec_old"], BODY, timestamp=NOW)

    # THEN a receiver holding either one accepts it
    assert header.count("v1=") == 2
    assert verify("whsec_new", header, BODY, now=NOW) and verify("whsec_old", header, BODY, now=NOW)
    assert not verify("whsec_other", header, BODY, now=NOW)


def test_malformed_headers_are_refused() -> None:
    # GIVEN headers without a timestamp or a signature
    # THEN none verifies
    for header in ("", "v1=abc", f"t={NOW}", f"t=soon,v1={signature('whsec_a', NOW, BODY)}"):
        assert not verify("whsec_a", header, BODY, now=NOW)
