"""SSRF rules of layers/http/outbound.py, checked with an empty allow-list passed in (no patching)."""
from __future__ import annotations

import ipaddress

import pytest

from layers.http.outbound import check_target_url, is_allowed, is_public, networks
from shared.errors import ValidationFailed

REFUSED = [
    "https://127.0.0.1/hook",
    "https://127.1.2.3:8443/hook",
    "https://localhost/hook",  # resolves (from /etc/hosts) to loopback
    "https://10.1.2.3/hook",
    "https://192.168.1.10/hook",
    "https://172.16.0.1/hook",
    "https://172.31.255.255/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.170.2/v2/credentials",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://100.64.0.1/hook",
    "https://[fc00::1]/hook",
    "https://[fd00:ec2::254]/hook",
    "https://[fe80::1]/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://255.255.255.255/hook",
    "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "https://[2002:c0a8:10a::]/hook",  # 6to4 of 192.168.1.10
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    # GIVEN a checker with no private network allowed
    # WHEN a URL reaching a non-public address is registered
    with pytest.raises(ValidationFailed) as refused:
        check_target_url(url, allow_http=False, allowed_private=[])

    # THEN it is a 422 on `url`
    assert refused.value.status == 422
    assert refused.value.errors and refused.value.errors[0]["field"] == "url"


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/hook",  # plain http outside local mode
    "https://user:secret@93.184.216.34/hook",
    "https://user@93.184.216.34/hook",
    "ftp://93.184.216.34/hook",
    "file:///etc/passwd",
    "https:///no-host",
    "https://93.184.216.34:99999/hook",
    "https://93.184.216.34/ho ok",
])
def test_bad_schemes_credentials_and_malformed_urls_are_refused(url: str) -> None:
    # GIVEN a checker outside local mode
    # WHEN such a URL is registered
    # THEN it is refused
    with pytest.raises(ValidationFailed):
        check_target_url(url, allow_http=False, allowed_private=[])


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "https://93.184.216.34:8443/hook?x=1",
                                 "https://[2606:2800:220:1:248:1893:25c8:1946]/hook"])
def test_public_addresses_on_any_port_are_accepted(url: str) -> None:
    # GIVEN a checker with no private network allowed
    # WHEN a public address is registered
    # THEN it passes
    check_target_url(url, allow_http=False, allowed_private=[])


def test_the_allow_list_opens_only_its_networks() -> None:
    # GIVEN a checker allowing loopback, with http (local mode)
    allowed = ["127.0.0.0/8"]

    # WHEN loopback and another private network are registered
    check_target_url("http://127.0.0.1:8080/hook", allow_http=True, allowed_private=allowed)
    check_target_url("http://localhost:8080/hook", allow_http=True, allowed_private=allowed)

    # THEN loopback passes, and the rest stays refused
    with pytest.raises(ValidationFailed):
        check_target_url("http://10.0.0.1/hook", allow_http=True, allowed_private=allowed)
    assert is_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), networks(allowed))
    assert not is_allowed(ipaddress.ip_address("::1"), networks(allowed))


def test_is_public() -> None:
    # GIVEN public and special addresses
    # THEN only the public ones are public
    assert is_public(ipaddress.ip_address("8.8.8.8")) and is_public(ipaddress.ip_address("2001:4860:4860::8888"))
    assert not any(is_public(ipaddress.ip_address(a)) for a in (
        "127.0.0.1", "10.0.0.1", "169.254.169.254", "100.100.100.200", "::1", "::ffff:10.0.0.1", "198.18.0.1"))


def test_no_allow_list_opens_the_metadata_endpoints() -> None:
    # GIVEN an allow-list covering link-local addresses
    # WHEN the metadata endpoints are registered
    # THEN they stay refused
    for url in ("http://169.254.169.254/latest/meta-data/", "http://169.254.170.2/v2/credentials"):
        with pytest.raises(ValidationFailed):
            check_target_url(url, allow_http=True, allowed_private=["169.254.0.0/16"])
    check_target_url("http://169.254.1.1/hook", allow_http=True, allowed_private=["169.254.0.0/16"])
