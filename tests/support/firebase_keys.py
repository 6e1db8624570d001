"""An offline stand-in for Firebase's token issuer: an RSA key, a self-signed x509 certificate
served as Google serves them (`{kid: cert_pem}` JSON with Cache-Control), and a minter of ID tokens.

    issuer = FirebaseTestIssuer(project_id="crm-test")
    verifier = FirebaseVerifier(project_id=issuer.project_id, certs_url=issuer.certs_url)
    verifier.verify(issuer.mint("user-1", email="a@example.com"))
    issuer.close()
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER_PREFIX = "https://securetoken.google.com/"
CERTS_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
CACHE_CONTROL = "public, max-age=3600"


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed_cert_pem(key: rsa.RSAPrivateKey, common_name: str = "securetoken.test") -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class FirebaseTestIssuer:
    """Serves test certificates on 127.0.0.1:<random port> and mints tokens signed by the test key."""

    def __init__(self, project_id: str = "crm-test") -> None:
        self.project_id = project_id
        self.key = generate_rsa_key()
        self.kid = uuid.uuid4().hex
        self.cert_pem = self_signed_cert_pem(self.key)
        self._lock = threading.Lock()
        self._cert_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="firebase-test-certs", daemon=True
        )
        self._thread.start()
        port = self._server.server_address[1]
        self.certs_url = f"http://127.0.0.1:{port}{CERTS_PATH}"

    @property
    def cert_requests(self) -> int:
        """How many times the certificate endpoint was fetched."""
        with self._lock:
            return self._cert_requests

    def certs(self) -> dict[str, str]:
        return {self.kid: self.cert_pem}

    def mint(
        self,
        uid: str,
        email: str | None = None,
        *,
        project_id: str | None = None,
        expires_in: int = 3600,
        issued_at: float | dt.datetime | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        alg: str = "RS256",
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        """A Firebase-shaped ID token. `kid=""` omits the kid header; `alg="none"` leaves it unsigned;
        `key=` signs with another key (the header keeps this issuer's kid unless `kid` is given).
        `extra_claims` is applied last, so it can override or (with value None) remove any claim."""
        project = project_id or self.project_id
        if issued_at is None:
            iat = int(time.time())
        elif isinstance(issued_at, dt.datetime):
            iat = int(issued_at.timestamp())
        else:
            iat = int(issued_at)
        claims: dict[str, Any] = {
            "iss": issuer if issuer is not None else ISSUER_PREFIX + project,
            "aud": audience if audience is not None else project,
            "auth_time": iat,
            "user_id": uid,
            "sub": uid,
            "iat": iat,
            "exp": iat + expires_in,
            "firebase": {
                "identities": {"email": [email]} if email else {},
                "sign_in_provider": "password" if email else "custom",
            },
        }
        if email is not None:
            claims["email"] = email
            claims["email_verified"] = True
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value

        headers: dict[str, Any] = {}
        kid = self.kid if kid is None else kid
        if kid:
            headers["kid"] = kid
        if alg.lower() == "none":
            return jwt.encode(claims, "", algorithm="none", headers=headers)
        return jwt.encode(claims, key or self.key, algorithm=alg, headers=headers)

    mint_token = mint

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class CertsHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != CERTS_PATH:
                    self._send(404, b'{"error": "not found"}', cache=False)
                    return
                with issuer._lock:
                    issuer._cert_requests += 1
                self._send(200, json.dumps(issuer.certs()).encode("utf-8"), cache=True)

            def _send(self, status: int, body: bytes, *, cache: bool) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                if cache:
                    self.send_header("Cache-Control", CACHE_CONTROL)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return CertsHandler
