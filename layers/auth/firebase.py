"""Firebase ID token verification through firebase-admin, with no implicit emulator mode.

`FirebaseVerifier.verify` returns a `FirebaseIdentity` or raises `Unauthorized` with a short detail
that never echoes the token or the claims; the reason goes to the log at DEBUG/WARNING.

Real mode: firebase-admin checks kid + RS256 signature against x509 certificates fetched from
`certs_url` (Google's endpoint by default), `exp`/`iat`, `aud` == project id,
`iss` == https://securetoken.google.com/<project id> and `sub`; we add the `auth_time` check
(firebase-admin's Python SDK does not do it). Certificates are cached per verifier by
firebase-admin's cachecontrol session for as long as the endpoint's Cache-Control allows.

Emulator mode (signatures NOT checked) is on only when `emulator_host` is passed explicitly.
firebase-admin decides emulation per call from the process env var FIREBASE_AUTH_EMULATOR_HOST,
so a real-mode verifier refuses to be built while that variable is set, and refuses every token
if it appears later.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, TypeGuard

import firebase_admin  # type: ignore[import-untyped]
import google.auth.credentials
import google.auth.jwt
from firebase_admin import _token_gen
from firebase_admin import auth as firebase_auth

from shared.errors import Unauthorized

__all__ = ["EMULATOR_HOST_ENV_VAR", "FirebaseIdentity", "FirebaseVerifier"]

log = logging.getLogger(__name__)

EMULATOR_HOST_ENV_VAR = "FIREBASE_AUTH_EMULATOR_HOST"
ISSUER_PREFIX = "https://securetoken.google.com/"
CLOCK_SKEW_SECONDS = 5  # tolerated for iat/exp/auth_time (firebase-admin allows 0..60)
MAX_TOKEN_CHARS = 16 * 1024  # Firebase ID tokens are ~1 KB; custom claims are capped at 1000 bytes
CERT_FETCH_TIMEOUT_SECONDS = 10  # firebase-admin's default is 120 s, too long on a request path
MAX_SUB_CHARS = 128

_INVALID = "Invalid ID token"
_EXPIRED = "ID token expired"
_MISSING = "Missing ID token"
_UNVERIFIABLE = "Could not verify ID token"


@dataclass(frozen=True)
class FirebaseIdentity:
    uid: str
    email: str | None
    email_verified: bool
    claims: dict[str, Any]


class FirebaseVerifier:
    """Verifies Firebase ID tokens for one project. Thread-safe; build once per process and share."""

    def __init__(
        self,
        *,
        project_id: str,
        certs_url: str | None = None,
        emulator_host: str | None = None,
    ) -> None:
        if not project_id or not isinstance(project_id, str):
            raise ValueError("FirebaseVerifier needs a non-empty project_id")
        self.project_id = project_id
        self.issuer = ISSUER_PREFIX + project_id
        self.emulator_host = emulator_host or None
        self.certs_url = certs_url or _token_gen.ID_TOKEN_CERT_URI
        self._app: firebase_admin.App | None = None
        self._client: firebase_auth.Client | None = None
        self._close_lock = threading.Lock()

        if self.emulator_host is not None:
            if "//" in self.emulator_host or ":" not in self.emulator_host:
                raise ValueError(f"emulator_host must look like host:port, got {self.emulator_host!r}")
            log.warning(
                "Firebase emulator mode: ID token signatures are NOT checked (project %s)", project_id
            )
            return  # claims are checked by _verify_emulated; firebase-admin is not consulted

        if os.environ.get(EMULATOR_HOST_ENV_VAR):
            raise RuntimeError(
                f"{EMULATOR_HOST_ENV_VAR} is set in the environment, which makes firebase-admin "
                "accept unsigned tokens; unset it, or pass emulator_host= explicitly (local mode only)"
            )

        # A named app per verifier; anonymous credential: ID token verification needs no Google
        # credential, and this one never reaches the network (unlike ApplicationDefault).
        self._app = firebase_admin.initialize_app(
            credential=google.auth.credentials.AnonymousCredentials(),
            options={"projectId": project_id, "httpTimeout": CERT_FETCH_TIMEOUT_SECONDS},
            name=f"crm-auth-{project_id}-{uuid.uuid4().hex[:12]}",
        )
        try:
            client = firebase_auth.Client(self._app)
            # Seam: the cert URL is a per-instance attribute of this app's own _JWTVerifier, so
            # overriding it touches nothing process-wide (unlike patching _token_gen.ID_TOKEN_CERT_URI).
            jwt_verifier = client._token_verifier.id_token_verifier
            if not isinstance(getattr(jwt_verifier, "cert_url", None), str):
                raise RuntimeError(
                    "firebase-admin layout changed: no _JWTVerifier.cert_url to point at certs_url")
            jwt_verifier.cert_url = self.certs_url
        except BaseException:
            firebase_admin.delete_app(self._app)
            self._app = None
            raise
        self._client = client

    @property
    def emulated(self) -> bool:
        return self.emulator_host is not None

    def verify(self, id_token: str) -> FirebaseIdentity:
        if not isinstance(id_token, str) or not id_token.strip():
            raise Unauthorized(_MISSING)
        if len(id_token) > MAX_TOKEN_CHARS:
            raise Unauthorized(_INVALID)
        if self.emulated:
            claims = self._verify_emulated(id_token)
        else:
            claims = self._verify_signed(id_token)
        return self._identity(claims)

    def close(self) -> None:
        """Release the firebase-admin app (tests build many verifiers; servers keep one)."""
        with self._close_lock:
            app, self._app, self._client = self._app, None, None
        if app is not None:
            firebase_admin.delete_app(app)

    # -- internals -----------------------------------------------------------------------------

    def _verify_signed(self, id_token: str) -> dict[str, Any]:
        client = self._client
        if client is None:
            raise Unauthorized(_UNVERIFIABLE)
        if os.environ.get(EMULATOR_HOST_ENV_VAR):
            # firebase-admin would skip the signature check on this call.
            log.error("%s appeared in the environment; refusing all ID tokens", EMULATOR_HOST_ENV_VAR)
            raise Unauthorized(_UNVERIFIABLE)
        try:
            claims = client.verify_id_token(id_token, clock_skew_seconds=CLOCK_SKEW_SECONDS)
        except _token_gen.ExpiredIdTokenError as exc:
            log.debug("firebase ID token expired")
            raise Unauthorized(_EXPIRED) from exc
        except _token_gen.CertificateFetchError as exc:
            log.warning("firebase certificate fetch failed: %s", exc)
            raise Unauthorized(_UNVERIFIABLE) from exc
        except (firebase_auth.InvalidIdTokenError, ValueError) as exc:
            # `from None`: some library messages quote the token; the redacted reason is logged.
            log.debug("firebase ID token rejected: %s: %s", type(exc).__name__, _redact(exc, id_token))
            raise Unauthorized(_INVALID) from None
        except Exception as exc:
            log.warning("firebase ID token check failed: %s: %s", type(exc).__name__, _redact(exc, id_token))
            raise Unauthorized(_INVALID) from None
        if not isinstance(claims, dict):
            raise Unauthorized(_INVALID)
        return claims

    def _verify_emulated(self, id_token: str) -> dict[str, Any]:
        # Same checks as firebase-admin's emulated path (which only runs when the env var is
        # set), plus expiry: the emulator mints tokens with a normal exp.
        try:
            claims = google.auth.jwt.decode(id_token, verify=False)
        except Exception as exc:
            log.debug("emulated ID token undecodable: %s", type(exc).__name__)
            raise Unauthorized(_INVALID) from None
        if not isinstance(claims, dict):
            raise Unauthorized(_INVALID)
        if claims.get("aud") != self.project_id or claims.get("iss") != self.issuer:
            raise Unauthorized(_INVALID)
        exp = claims.get("exp")
        if not _is_number(exp):
            raise Unauthorized(_INVALID)
        if exp < time.time() - CLOCK_SKEW_SECONDS:
            raise Unauthorized(_EXPIRED)
        claims = dict(claims)
        claims["uid"] = claims.get("sub")
        return claims

    def _identity(self, claims: dict[str, Any]) -> FirebaseIdentity:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_CHARS:
            raise Unauthorized(_INVALID)
        auth_time = claims.get("auth_time")
        if not _is_number(auth_time) or auth_time > time.time() + CLOCK_SKEW_SECONDS:
            log.debug("firebase ID token has a missing or future auth_time")
            raise Unauthorized(_INVALID)
        email = claims.get("email")
        if email is not None and not isinstance(email, str):
            raise Unauthorized(_INVALID)
        return FirebaseIdentity(
            uid=sub,
            email=email or None,
            email_verified=claims.get("email_verified") is True,
            claims=dict(claims),
        )


def _redact(exc: BaseException, token: str) -> str:
    """The library's reason, without the token (some messages quote it) and bounded in size."""
    return str(exc).replace(token, "<token>")[:300]


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
