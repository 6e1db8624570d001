"""layers/http/outbound.post against real sockets on 127.0.0.1: refusals never reach the receiver, TLS
verifies the hostname while connecting to the checked address."""
from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from layers.http.outbound import post
from tests.functional.test_webhooks import Receiver

LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_without_an_allow_list(receiver: Receiver, host: str) -> None:
    # GIVEN a live receiver on loopback, reached by address or by a name resolving to it
    url = receiver.url.replace("127.0.0.1", host)

    # WHEN a delivery is posted with no private network allowed
    outcome = post(url, b"{}", {}, 2.0, allow_http=True, allowed_private=[])

    # THEN it is refused before any connection
    assert not outcome.ok and outcome.status_code is None
    assert outcome.error and outcome.error.startswith("refused")
    assert receiver.requests == []


def test_plain_http_is_refused_outside_local_mode(receiver: Receiver) -> None:
    # GIVEN a receiver on an allowed network, but http not allowed
    # WHEN a delivery is posted
    outcome = post(receiver.url, b"{}", {}, 2.0, allow_http=False, allowed_private=LOOPBACK)

    # THEN it is refused
    assert outcome.error and "https" in outcome.error
    assert receiver.requests == []


def test_a_name_is_sent_as_the_host_header_to_the_checked_address(receiver: Receiver) -> None:
    # GIVEN a receiver reached through `localhost`, loopback allowed
    url = receiver.url.replace("127.0.0.1", "localhost")

    # WHEN a delivery is posted
    outcome = post(url, b'{"a":1}', {"Content-Type": "application/json"}, 2.0, allow_http=True,
                   allowed_private=LOOPBACK)

    # THEN it arrives with the name as Host, the body as sent, and our user agent
    assert outcome.ok, outcome
    (request,) = receiver.requests
    port = url.split(":")[2].split("/")[0]
    assert request.headers["Host"] == f"localhost:{port}"
    assert request.body == b'{"a":1}' and request.headers["User-Agent"] == "crm-webhooks/1"


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    # GIVEN a receiver answering 302 to somewhere else
    receiver.default = 302
    receiver.location = receiver.url.replace("/hooks/crm", "/stolen")

    # WHEN a delivery is posted
    outcome = post(receiver.url, b"{}", {}, 2.0, allow_http=True, allowed_private=LOOPBACK)

    # THEN the attempt failed, saying so, and the Location was never requested
    assert not outcome.ok and outcome.status_code == 302
    assert outcome.error and "redirects are not followed" in outcome.error
    assert [r.path for r in receiver.requests] == ["/hooks/crm"]


def test_only_an_excerpt_of_the_answer_is_kept(receiver: Receiver) -> None:
    # GIVEN a receiver answering 500 with 5000 bytes
    receiver.default = 500

    # WHEN a delivery is posted
    outcome = post(receiver.url, b"{}", {}, 2.0, allow_http=True, allowed_private=LOOPBACK)

    # THEN the excerpt is at most 1 KB
    assert outcome.status_code == 500 and outcome.excerpt is not None and len(outcome.excerpt) == 1024


def test_a_silent_receiver_times_out() -> None:
    # GIVEN a socket that accepts connections but never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"

        # WHEN a delivery is posted with a short timeout
        outcome = post(url, b"{}", {}, 0.3, allow_http=True, allowed_private=LOOPBACK)

    # THEN it is a failed attempt that says it timed out
    assert not outcome.ok and outcome.error and "timed out" in outcome.error


def test_a_closed_port_is_a_failed_attempt() -> None:
    # GIVEN a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # WHEN a delivery is posted
    outcome = post(f"http://127.0.0.1:{port}/hook", b"{}", {}, 1.0, allow_http=True, allowed_private=LOOPBACK)

    # THEN it failed with the connection error, without raising
    assert not outcome.ok and outcome.status_code is None and outcome.error


@dataclass
class TlsReceiver:
    """An HTTPS server on 127.0.0.1 whose certificate (from a test CA) names only `localhost`."""

    ca_file: str
    port: int
    server: ThreadingHTTPServer
    seen: list[tuple[str | None, str]]  # (SNI name, Host header) of each request

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[TlsReceiver]:
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crm test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem) + leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    seen: list[tuple[str | None, str]] = []
    sni: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((sni[-1] if sni else None, self.headers.get("Host", "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    context.sni_callback = lambda _sock, name, _ctx: sni.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    made = TlsReceiver(str(tmp_path / "ca.pem"), server.server_address[1], server, seen)
    yield made
    made.close()


def test_https_connects_to_the_checked_address_with_sni_and_a_verified_certificate(
        tls_receiver: TlsReceiver) -> None:
    # GIVEN an HTTPS receiver with a certificate for `localhost`, its CA trusted
    url = f"https://localhost:{tls_receiver.port}/hook"

    # WHEN a delivery is posted
    outcome = post(url, b"{}", {}, 2.0, allow_http=False, allowed_private=LOOPBACK, ca_certs=tls_receiver.ca_file)

    # THEN the TLS handshake named the host (SNI) and the Host header did too
    assert outcome.ok, outcome
    assert tls_receiver.seen == [("localhost", f"localhost:{tls_receiver.port}")]


def test_https_refuses_an_untrusted_or_mismatched_certificate(tls_receiver: TlsReceiver) -> None:
    # GIVEN the same receiver
    # WHEN its CA is not trusted, or the URL names an address the certificate does not
    untrusted = post(f"https://localhost:{tls_receiver.port}/hook", b"{}", {}, 2.0, allow_http=False,
                     allowed_private=LOOPBACK)
    mismatched = post(f"https://127.0.0.1:{tls_receiver.port}/hook", b"{}", {}, 2.0, allow_http=False,
                      allowed_private=LOOPBACK, ca_certs=tls_receiver.ca_file)

    # THEN both attempts fail before any request is sent
    assert not untrusted.ok and untrusted.error and untrusted.status_code is None
    assert not mismatched.ok and mismatched.error and mismatched.status_code is None
    assert tls_receiver.seen == []
