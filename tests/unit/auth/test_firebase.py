"""FirebaseVerifier against a local certificate endpoint: the real firebase-admin RS256 path, offline."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from layers.auth.firebase import (
    EMULATOR_HOST_ENV_VAR,
    FirebaseIdentity,
    FirebaseVerifier,
)
from shared.errors import Unauthorized
from tests.support.firebase_keys import FirebaseTestIssuer, generate_rsa_key

PROJECT = "crm-unit"


@pytest.fixture(scope="module")
def issuer() -> Iterator[FirebaseTestIssuer]:
    iss = FirebaseTestIssuer(project_id=PROJECT)
    yield iss
    iss.close()


@pytest.fixture(autouse=True)
def _no_emulator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EMULATOR_HOST_ENV_VAR, raising=False)


@pytest.fixture
def verifier(issuer: FirebaseTestIssuer) -> Iterator[FirebaseVerifier]:
    v = FirebaseVerifier(project_id=PROJECT, certs_url=issuer.certs_url)
    yield v
    v.close()


def assert_refused(verifier: FirebaseVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    err = caught.value
    assert err.status == 401
    assert len(err.detail) < 60
    if token:
        assert token not in err.detail
    return err


def test_valid_token_is_accepted(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a token signed by the issuer's key for this project
    token = issuer.mint("user-1", email="ada@example.com", extra_claims={"role_hint": "x"})
    # WHEN it is verified
    identity = verifier.verify(token)
    # THEN the identity carries the uid, email and verification flag, and the raw claims
    assert isinstance(identity, FirebaseIdentity)
    assert identity.uid == "user-1"
    assert identity.email == "ada@example.com"
    assert identity.email_verified is True
    assert identity.claims["aud"] == PROJECT
    assert identity.claims["role_hint"] == "x"


def test_unverified_email_and_no_email(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN one token with an unverified email and one with no email at all
    unverified = issuer.mint("user-2", email="bob@example.com", extra_claims={"email_verified": False})
    anonymous = issuer.mint("user-3")
    # WHEN both are verified
    first, second = verifier.verify(unverified), verifier.verify(anonymous)
    # THEN the flags reflect the claims
    assert (first.email, first.email_verified) == ("bob@example.com", False)
    assert (second.email, second.email_verified) == (None, False)


def test_expired_token_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a token that expired a minute ago
    token = issuer.mint("user-1", issued_at=time.time() - 3700, expires_in=3600)
    # WHEN / THEN it is refused as expired
    assert assert_refused(verifier, token).detail == "ID token expired"


def test_token_issued_in_the_future_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a token whose iat is ten minutes ahead
    token = issuer.mint("user-1", issued_at=time.time() + 600)
    # WHEN / THEN it is refused
    assert_refused(verifier, token)


def test_future_auth_time_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a validly signed token whose auth_time lies in the future (firebase-admin skips this check)
    token = issuer.mint("user-1", extra_claims={"auth_time": int(time.time()) + 600})
    # WHEN / THEN it is refused
    assert_refused(verifier, token)


def test_missing_auth_time_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a validly signed token without auth_time
    token = issuer.mint("user-1", extra_claims={"auth_time": None})
    # WHEN / THEN it is refused
    assert_refused(verifier, token)


def test_wrong_audience_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a correctly signed token for another project
    token = issuer.mint("user-1", audience="other-project")
    # WHEN / THEN it is refused
    assert assert_refused(verifier, token).detail == "Invalid ID token"


def test_wrong_issuer_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a correctly signed token with the right audience but another issuer
    token = issuer.mint("user-1", issuer="https://securetoken.google.com/other-project")
    # WHEN / THEN it is refused
    assert_refused(verifier, token)


def test_empty_subject_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a correctly signed token with an empty sub
    token = issuer.mint("", extra_claims={"sub": ""})
    # WHEN / THEN it is refused
    assert_refused(verifier, token)


@pytest.mark.parametrize("kid", ["", None], ids=["no-kid", "issuer-kid"])
def test_unsigned_token_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier, kid: str | None) -> None:
    # GIVEN an alg=none token, with and without the issuer's kid
    token = issuer.mint("user-1", email="ada@example.com", alg="none", kid=kid)
    # WHEN / THEN it is refused
    assert_refused(verifier, token)


def test_forged_token_with_known_kid_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a token signed by another key but naming the issuer's kid
    token = issuer.mint("user-1", key=generate_rsa_key(), kid=issuer.kid)
    # WHEN / THEN the signature check refuses it
    assert_refused(verifier, token)


def test_tampered_payload_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a valid token whose payload is swapped for another user's, keeping the signature
    header, _, signature = issuer.mint("user-1").split(".")
    _, other_payload, _ = issuer.mint("admin").split(".")
    # WHEN / THEN it is refused
    assert_refused(verifier, f"{header}.{other_payload}.{signature}")


def test_unknown_kid_is_refused(issuer: FirebaseTestIssuer, verifier: FirebaseVerifier) -> None:
    # GIVEN a token signed by the right key but naming a kid the endpoint does not serve
    token = issuer.mint("user-1", kid="no-such-kid")
    # WHEN / THEN it is refused
    assert_refused(verifier, token)


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "\u00e9\u00e9.\u00e9.\u00e9", "x" * 20_000],
    ids=["word", "three-parts", "empty-payload", "non-ascii", "huge"],
)
def test_garbage_is_refused(verifier: FirebaseVerifier, token: str) -> None:
    # GIVEN a string that is not a JWT
    # WHEN / THEN it is refused with Unauthorized, not any other exception
    assert_refused(verifier, token)


@pytest.mark.parametrize("token", ["", "   ", None, b"bytes"], ids=["empty", "blank", "none", "bytes"])
def test_empty_or_non_string_token_is_refused(verifier: FirebaseVerifier, token: object) -> None:
    # GIVEN no usable token
    # WHEN / THEN it is refused
    with pytest.raises(Unauthorized):
        verifier.verify(token)  # type: ignore[arg-type]


def test_unreachable_cert_endpoint_is_refused(issuer: FirebaseTestIssuer) -> None:
    # GIVEN a verifier whose certificate endpoint answers 404
    verifier = FirebaseVerifier(project_id=PROJECT, certs_url=issuer.certs_url + "-missing")
    try:
        # WHEN a valid token is verified / THEN it is refused without leaking the URL
        err = assert_refused(verifier, issuer.mint("user-1"))
        assert "127.0.0.1" not in err.detail
    finally:
        verifier.close()


def test_emulator_mode_accepts_unsigned_token(issuer: FirebaseTestIssuer) -> None:
    # GIVEN a verifier explicitly in emulator mode, and an unsigned emulator-style token
    verifier = FirebaseVerifier(project_id=PROJECT, emulator_host="127.0.0.1:9099")
    token = issuer.mint("emu-user", email="emu@example.com", alg="none", kid="")
    # WHEN it is verified
    identity = verifier.verify(token)
    # THEN it is accepted
    assert (identity.uid, identity.email, identity.email_verified) == ("emu-user", "emu@example.com", True)


def test_emulator_mode_still_checks_claims(issuer: FirebaseTestIssuer) -> None:
    # GIVEN an emulator-mode verifier
    verifier = FirebaseVerifier(project_id=PROJECT, emulator_host="127.0.0.1:9099")
    # WHEN tokens for another project, another issuer, expired or garbage arrive / THEN all are refused
    for token in (
        issuer.mint("u", alg="none", kid="", audience="other-project"),
        issuer.mint("u", alg="none", kid="", issuer="https://evil.example"),
        issuer.mint("u", alg="none", kid="", issued_at=time.time() - 7200),
        issuer.mint("", alg="none", kid=""),
        "garbage",
        "",
    ):
        with pytest.raises(Unauthorized):
            verifier.verify(token)


def test_real_mode_refused_while_emulator_env_var_is_set(
    issuer: FirebaseTestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the process env var that makes firebase-admin skip signature checks
    monkeypatch.setenv(EMULATOR_HOST_ENV_VAR, "127.0.0.1:9099")
    # WHEN a real-mode verifier is built / THEN construction is refused with a clear message
    with pytest.raises(RuntimeError, match=EMULATOR_HOST_ENV_VAR):
        FirebaseVerifier(project_id=PROJECT, certs_url=issuer.certs_url)


def test_env_var_appearing_later_refuses_unsigned_tokens(
    issuer: FirebaseTestIssuer, verifier: FirebaseVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a real-mode verifier, after which the emulator env var appears
    monkeypatch.setenv(EMULATOR_HOST_ENV_VAR, "127.0.0.1:9099")
    # WHEN an unsigned token is verified / THEN it is refused, not accepted as emulated
    assert_refused(verifier, issuer.mint("user-1", alg="none", kid=""))


def test_emulator_env_var_alone_does_not_enable_emulation(
    issuer: FirebaseTestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an emulator-mode verifier built while the env var names a host (the local-mode setup)
    monkeypatch.setenv(EMULATOR_HOST_ENV_VAR, "127.0.0.1:9099")
    verifier = FirebaseVerifier(project_id=PROJECT, emulator_host="127.0.0.1:9099")
    # WHEN / THEN it is in emulator mode only because emulator_host was passed
    assert verifier.emulated
    assert verifier.verify(issuer.mint("u", alg="none", kid="")).uid == "u"


def test_certificates_are_fetched_once_for_many_verifications() -> None:
    # GIVEN a fresh issuer (own request counter) and a verifier pointed at it
    with FirebaseTestIssuer(project_id=PROJECT) as fresh:
        verifier = FirebaseVerifier(project_id=PROJECT, certs_url=fresh.certs_url)
        try:
            tokens = [fresh.mint(f"user-{i}") for i in range(20)]
            # WHEN many tokens are verified, one after another
            for token in tokens * 5:
                verifier.verify(token)
            # THEN the certificates were fetched once
            assert fresh.cert_requests == 1
        finally:
            verifier.close()


def test_concurrent_verification_is_safe_and_cached() -> None:
    # GIVEN a warmed-up verifier and a fresh issuer
    with FirebaseTestIssuer(project_id=PROJECT) as fresh:
        verifier = FirebaseVerifier(project_id=PROJECT, certs_url=fresh.certs_url)
        try:
            verifier.verify(fresh.mint("warm-up"))
            tokens = {f"user-{i}": fresh.mint(f"user-{i}") for i in range(8)}
            errors: list[BaseException] = []
            mismatches: list[str] = []

            def work(uid: str, token: str) -> None:
                try:
                    for _ in range(25):
                        if verifier.verify(token).uid != uid:
                            mismatches.append(uid)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=work, args=item) for item in tokens.items()]
            # WHEN eight threads verify their own tokens concurrently
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # THEN every call succeeded with its own identity and nothing was re-fetched
            assert errors == [] and mismatches == []
            assert fresh.cert_requests == 1
        finally:
            verifier.close()


def test_each_verifier_uses_its_own_named_app(issuer: FirebaseTestIssuer) -> None:
    # GIVEN two verifiers for different projects side by side
    other = FirebaseTestIssuer(project_id="crm-other")
    a = FirebaseVerifier(project_id=PROJECT, certs_url=issuer.certs_url)
    b = FirebaseVerifier(project_id="crm-other", certs_url=other.certs_url)
    try:
        # WHEN each sees the other's token / THEN each accepts only its own
        assert a.verify(issuer.mint("u1")).uid == "u1"
        assert b.verify(other.mint("u2")).uid == "u2"
        assert_refused(a, other.mint("u2"))
        assert_refused(b, issuer.mint("u1"))
    finally:
        a.close()
        b.close()
        other.close()


def test_concurrent_cold_start_is_safe() -> None:
    # GIVEN a verifier that has not fetched certificates yet
    with FirebaseTestIssuer(project_id=PROJECT) as fresh:
        verifier = FirebaseVerifier(project_id=PROJECT, certs_url=fresh.certs_url)
        try:
            token = fresh.mint("user-1")
            results: list[str] = []
            errors: list[BaseException] = []
            barrier = threading.Barrier(8)

            def work() -> None:
                try:
                    barrier.wait()
                    results.append(verifier.verify(token).uid)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(8)]
            # WHEN eight threads verify at the same moment
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # THEN all succeed; at most one fetch per racing thread, and none once warm
            assert errors == [] and results == ["user-1"] * 8
            assert 1 <= fresh.cert_requests <= 8
            before = fresh.cert_requests
            verifier.verify(token)
            assert fresh.cert_requests == before
        finally:
            verifier.close()


def test_rejection_does_not_log_or_chain_the_token(
    verifier: FirebaseVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a malformed token that the library quotes in its error message
    token = "secret-looking-garbage-token"
    caplog.set_level("DEBUG", logger="layers.auth.firebase")
    # WHEN it is refused
    err = assert_refused(verifier, token)
    # THEN neither the log nor the exception chain carries it
    assert token not in caplog.text
    assert err.__cause__ is None
