"""The outbound URL policy at save time: what a customer URL may point at."""

from __future__ import annotations

import pytest

from telephony.urlpolicy import UrlRefused, validate_customer_url


@pytest.fixture
def strict(settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = []


@pytest.mark.parametrize(
    "url,code",
    [
        ("ftp://example.com/x", "url_scheme"),
        ("javascript:alert(1)", "url_scheme"),
        ("http://user:pw@example.com/", "url_credentials"),
        ("http://127.0.0.1/hook", "url_forbidden_address"),
        ("http://localhost:8000/hook", "url_forbidden_address"),
        ("http://169.254.169.254/latest/meta-data", "url_forbidden_address"),
        ("http://[::1]/hook", "url_forbidden_address"),
        ("http://10.1.2.3/hook", "url_forbidden_address"),
        ("http://192.168.0.10/hook", "url_forbidden_address"),
        ("http://100.64.0.1/hook", "url_forbidden_address"),
        ("http://[::ffff:127.0.0.1]/hook", "url_forbidden_address"),
        ("http://0.0.0.0/hook", "url_forbidden_address"),
        ("http://224.0.0.1/hook", "url_forbidden_address"),
        ("http:///nohost", "url_invalid"),
        ("http://no-such-host.invalid/hook", "url_unresolvable"),
    ],
)
def test_it_refuses_urls_the_platform_must_never_call(strict, url, code):
    with pytest.raises(UrlRefused) as refused:
        validate_customer_url(url)

    assert refused.value.code == code


def test_it_accepts_a_public_address(strict):
    assert validate_customer_url("https://93.184.216.34/hooks") == "https://93.184.216.34/hooks"


def test_loopback_is_allowed_only_when_the_setting_says_so(settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = True

    assert validate_customer_url("http://127.0.0.1:9000/hook")


def test_an_allow_listed_network_is_accepted(strict, settings):
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    assert validate_customer_url("http://10.1.2.3/hook")


def test_ports_can_be_restricted(strict, settings):
    settings.OUTBOUND_URL_ALLOWED_PORTS = [443]

    with pytest.raises(UrlRefused) as refused:
        validate_customer_url("https://93.184.216.34:8443/hooks")

    assert refused.value.code == "url_port"
