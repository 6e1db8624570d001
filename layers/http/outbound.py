"""Outbound HTTP to addresses customers give us (webhooks), safe against SSRF.

Checks happen twice: `check_target_url` at registration (a clear 422), and `post` at every delivery,
which resolves the name itself, refuses it if ANY address is not globally routable (unless inside an
allowed CIDR), then connects to the address it checked — never a second lookup, so a DNS rebinding
answer between check and connect cannot steer us inside. TLS still verifies the certificate for the
hostname (SNI + hostname check), redirects are never followed, and only a short excerpt is read.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from shared.errors import ValidationFailed
from shared.settings import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EXCERPT_BYTES = 1024
MAX_URL_LENGTH = 2048
USER_AGENT = "crm-webhooks/1"
MAX_ADDRESSES_TRIED = 3  # a host's addresses, in resolver order, while connecting fails
# RFC 6052 NAT64 prefix: the IPv4 address in its last 32 bits is where the packet really goes.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Cloud metadata endpoints: link-local or private, so refused anyway; named so no allow-list opens them.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254"))


class TargetRefused(Exception):
    """The URL may not be called: bad scheme, credentials in it, or an address that is not public."""


@dataclass(frozen=True)
class Outcome:
    """What one POST came to; `error` is set for anything but a 2xx answer."""

    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Target:
    scheme: str
    hostname: str
    port: int
    path: str  # with the query string


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one really reaches (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved, multicast, ..."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_private or address.is_loopback or address.is_link_local
        or address.is_reserved or address.is_unspecified
    )


def is_allowed(address: IPAddress, allowed_private: tuple[Network, ...]) -> bool:
    if is_public(address):
        return True
    candidates: list[IPAddress] = [address]
    inner = embedded_ipv4(address)
    if inner is not None:
        candidates.append(inner)
    if any(c in METADATA_ADDRESSES for c in candidates):
        return False
    return any(c.version == n.version and c in n for c in candidates for n in allowed_private)


def parse_target(url: str, *, allow_http: bool) -> Target:
    """The URL's parts, or TargetRefused when it is not one we call."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise TargetRefused("URL contains whitespace or control characters")
    parts: SplitResult = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not allow_http):
        raise TargetRefused("only https:// URLs are allowed" if not allow_http else "only http(s):// URLs")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("credentials (user:password@) are not allowed in the URL")
    hostname = (parts.hostname or "").rstrip(".").lower()
    if not hostname:
        raise TargetRefused("URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("URL has an invalid port") from None
    if port == 0:
        raise TargetRefused("URL has an invalid port")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, hostname=hostname, port=port, path=path)


def literal_address(hostname: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(hostname)
    except ValueError:
        return None


def resolve(target: Target, allowed_private: tuple[Network, ...]) -> list[IPAddress]:
    """Every address the host has; TargetRefused if any is not public and not allowed."""
    literal = literal_address(target.hostname)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(target.hostname, target.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise LookupError(f"cannot resolve {target.hostname}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    refused = [a for a in addresses if not is_allowed(a, allowed_private)]
    if refused or not addresses:
        raise TargetRefused(f"{target.hostname} resolves to a non-public address ({refused[0] if refused else '-'})")
    return addresses


def check_target_url(url: str, *, allow_http: bool, allowed_private: list[str]) -> None:
    """At registration: a URL we would refuse to call is a 422 on `url`.

    A name that does not resolve now is accepted (DNS may be down, or not set up yet): every delivery
    checks again anyway."""
    try:
        target = parse_target(url, allow_http=allow_http)
        resolve(target, networks(allowed_private))
    except TargetRefused as refused:
        raise ValidationFailed("the webhook URL is not allowed", errors=[
            {"field": "url", "message": str(refused), "code": "url_refused"}]) from None
    except LookupError:
        return


def post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float | None = None, *,
    allow_http: bool | None = None, allowed_private: list[str] | None = None, ca_certs: str | None = None,
) -> Outcome:
    """POST once to a checked address; never raises for the receiver's faults (they are the Outcome).

    `ca_certs`: a CA bundle to trust instead of the system's (tests, private CAs)."""
    settings = get_settings()
    allow_http = settings.is_local if allow_http is None else allow_http
    allowed = networks(settings.webhook_allowed_private_cidrs if allowed_private is None else allowed_private)
    timeout = settings.webhook_timeout_seconds if timeout is None else timeout
    started = time.monotonic()

    def outcome(status: int | None, excerpt: str | None, error: str | None) -> Outcome:
        return Outcome(status, int((time.monotonic() - started) * 1000), excerpt, error)

    try:
        target = parse_target(url, allow_http=allow_http)
        addresses = resolve(target, allowed)
    except TargetRefused as refused:
        return outcome(None, None, f"refused: {refused}")
    except LookupError as missing:
        return outcome(None, None, str(missing))
    answer: tuple[int, str] | None = None
    failure: Exception | None = None
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        try:
            answer = _post_to(target, address, body, headers, timeout, ca_certs)
            break
        except ConnectTimeoutError as cannot_connect:  # nothing was sent: the host's next address may answer
            failure = cannot_connect
        except (Urllib3Error, OSError) as failed:  # timeouts, TLS failures, dropped connections
            return outcome(None, None, _describe(failed))
    if answer is None:
        return outcome(None, None, _describe(failure) if failure else "no address to connect to")
    status, excerpt = answer
    if 300 <= status < 400:
        return outcome(status, excerpt, f"redirect ({status}) not followed: redirects are not followed")
    if not 200 <= status < 300:
        return outcome(status, excerpt, f"receiver answered {status}")
    return outcome(status, excerpt, None)


def _post_to(target: Target, address: IPAddress, body: bytes, headers: Mapping[str, str], timeout: float,
             ca_certs: str | None) -> tuple[int, str]:
    """The status and the first bytes of the answer; urllib3's errors for anything else."""
    pool = _pool(target, address, timeout, ca_certs)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers={"User-Agent": USER_AGENT, **headers, "Host": _host_header(target)},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )
        try:
            return response.status, response.read(EXCERPT_BYTES).decode("utf-8", errors="replace")
        finally:
            response.close()
    finally:
        pool.close()


def _pool(target: Target, address: IPAddress, timeout: float, ca_certs: str | None) -> urllib3.HTTPConnectionPool:
    """A pool that connects to the checked address, while TLS speaks to (and verifies) the hostname."""
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            host=str(address), port=target.port, timeout=limits, retries=False, maxsize=1,
            server_hostname=target.hostname, assert_hostname=target.hostname, cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )
    return urllib3.HTTPConnectionPool(host=str(address), port=target.port, timeout=limits, retries=False, maxsize=1)


def _host_header(target: Target) -> str:
    host = f"[{target.hostname}]" if ":" in target.hostname else target.hostname
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _describe(failure: Exception) -> str:
    if isinstance(failure, Urllib3Timeout | TimeoutError):
        return f"timed out: {failure}"[:500]
    return f"{type(failure).__name__}: {failure}"[:500]
