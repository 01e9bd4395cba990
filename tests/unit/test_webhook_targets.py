"""SSRF: which webhook targets are refused, however the address is spelled or wherever the name points."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator

import pytest

from messaging import webhook_targets
from messaging.errors import InvalidInput
from messaging.webhook_targets import TargetRefused, check_url, is_public, resolve_target

REFUSED_URLS = [
    "https://127.0.0.1/hook",
    "https://127.1/hook",  # short form
    "https://2130706433/hook",  # decimal
    "https://0177.0.0.1/hook",  # octal
    "https://0x7f.0.0.1/hook",  # hexadecimal
    "https://017700000001/hook",  # one octal number
    "https://localhost/hook",
    "https://10.0.0.8/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",  # the instance metadata service
    "https://100.64.0.1/hook",  # shared address space (carrier NAT)
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",  # multicast
    "https://240.0.0.1/hook",  # reserved
    "https://255.255.255.255/hook",
    "https://198.18.0.1/hook",  # benchmarking
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "https://[::ffff:a9fe:a9fe]/hook",  # IPv4-mapped metadata service, in hex
    "https://[fe80::1]/hook",  # link-local
    "https://[fc00::1]/hook",  # unique local
    "https://[ff02::1]/hook",  # multicast
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "https://[fec0::1]/hook",  # site-local (deprecated, still private where used)
    "https://[feff:ffff::1]/hook",  # site-local, its last block
    "https://192.0.0.8/hook",  # IPv4 dummy address (IETF protocol assignments)
    "https://192.0.0.9/hook",  # IETF protocol assignments, though Python calls it global
    "https://192.0.0.255/hook",
    "https://[::ffff:192.0.0.10]/hook",  # the same, IPv4-mapped
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_private_loopback_link_local_multicast_and_reserved_targets_are_refused(url):
    with pytest.raises(InvalidInput) as refused:
        check_url(url, allow_private=False, resolve_timeout=1)
    assert refused.value.field == "url"


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "64:ff9b::5db8:d822",
        "::ffff:93.184.216.34",
        "192.0.1.1",  # just past 192.0.0.0/24
        "191.255.255.254",  # just before it
    ],
)
def test_public_addresses_are_allowed(address):
    assert is_public(ipaddress.ip_address(address))


def test_a_public_literal_is_accepted():
    assert (
        check_url("https://93.184.216.34/hook?x=1", allow_private=False, resolve_timeout=1)
        == "https://93.184.216.34/hook?x=1"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # https only
        "ftp://93.184.216.34/hook",
        "https:///hook",
        "https://user:secret@93.184.216.34/hook",
        "https://93.184.216.34/ho ok",
        "https://93.184.216.34:99999/hook",
        "https://93.184.216.34/hook#fragment",
        "https://93.184.216.34/" + "a" * 3000,
    ],
)
def test_malformed_or_plain_http_urls_are_refused(url):
    with pytest.raises(InvalidInput):
        check_url(url, allow_private=False, resolve_timeout=1)


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(webhook_targets, "resolver", lambda _host, _port: ["10.1.2.3"])
    with pytest.raises(InvalidInput, match="non-public"):
        check_url("https://hooks.customer.example/x", allow_private=False, resolve_timeout=1)


def test_a_name_resolving_to_a_public_and_a_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(webhook_targets, "resolver", lambda _host, _port: ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(TargetRefused):
        resolve_target("https://hooks.customer.example/x", allow_private=False, timeout=1)


def test_an_unresolvable_name_is_refused(monkeypatch):
    def fail(_host, _port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(webhook_targets, "resolver", fail)
    with pytest.raises(InvalidInput, match="does not resolve"):
        check_url("https://nowhere.invalid/x", allow_private=False, resolve_timeout=1)


def test_allowing_private_targets_lifts_the_address_check_and_the_https_rule_only():
    assert check_url("http://127.0.0.1:8080/hook", allow_private=True, resolve_timeout=1)
    with pytest.raises(InvalidInput):
        check_url("ftp://127.0.0.1/hook", allow_private=True, resolve_timeout=1)


def test_a_delivery_to_a_refused_address_makes_no_connection():
    result = webhook_targets.post(
        "https://169.254.169.254/latest/meta-data/",
        b"{}",
        {},
        allow_private=False,
        connect_timeout=1,
        total_timeout=1,
    )
    assert result.status_code is None and result.error is not None and result.error.startswith("refused")


@pytest.fixture
def hanging_resolver(monkeypatch) -> Iterator[None]:
    """A name server that never answers (until the test ends): the resolver blocks."""
    release = threading.Event()

    def hang(_host: str, _port: int) -> list[str]:
        release.wait(30)
        return ["93.184.216.34"]

    monkeypatch.setattr(webhook_targets, "resolver", hang)
    yield
    release.set()


def test_a_name_that_does_not_resolve_in_time_is_refused_at_registration_naming_url(hanging_resolver):
    with pytest.raises(InvalidInput, match=r"'hooks.customer.example' did not resolve within 0.05 s") as refused:
        check_url("https://hooks.customer.example/x", allow_private=False, resolve_timeout=0.05)
    assert refused.value.field == "url"


def test_a_name_that_does_not_resolve_in_time_is_a_failed_attempt_that_connects_nowhere(hanging_resolver):
    result = webhook_targets.post(
        "https://hooks.customer.example/x", b"{}", {}, allow_private=False, connect_timeout=0.05, total_timeout=5
    )
    assert (result.status_code, result.succeeded) == (None, False)
    assert result.error == "timed out: the host 'hooks.customer.example' did not resolve within 0.05 s"


def test_resolution_is_bounded_by_the_total_timeout_when_it_is_the_smaller(hanging_resolver):
    result = webhook_targets.post(
        "http://hooks.customer.example/x", b"{}", {}, allow_private=True, connect_timeout=3, total_timeout=0.05
    )
    assert result.error == "timed out: the host 'hooks.customer.example' did not resolve within 0.05 s"


def test_a_resolver_error_is_reported_from_its_thread(monkeypatch):
    def fail(_host, _port):
        raise UnicodeError("label too long")

    monkeypatch.setattr(webhook_targets, "resolver", fail)
    with pytest.raises(TargetRefused, match="does not resolve"):
        resolve_target("https://hooks.customer.example/x", allow_private=False, timeout=5)
