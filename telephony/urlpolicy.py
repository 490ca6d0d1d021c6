"""The outbound URL policy: which customer URLs the platform will ever send a request to.

Checked twice: when a URL is saved (a clear validation error) and again at connect time by the one HTTP
client that calls customer URLs, after DNS resolution, because a name that resolved to a public address
yesterday can point at 127.0.0.1 today. Only http/https, no credentials in the URL, allowed ports only,
and no loopback, private, link-local, CGNAT, multicast or reserved address unless a setting allows it.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

CGNAT = ipaddress.ip_network("100.64.0.0/10")


class UrlRefused(ValidationError):
    """A URL the policy will not call; the message says why in words a customer can act on."""


def _allowed_networks() -> list[ipaddress._BaseNetwork]:
    networks = [ipaddress.ip_network(n, strict=False) for n in getattr(settings, "OUTBOUND_URL_ALLOWED_NETWORKS", [])]
    if getattr(settings, "OUTBOUND_URL_ALLOW_LOOPBACK", False):
        networks += [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    return networks


def address_refusal(address: str) -> str | None:
    """Why this IP address may not be called, or None if it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in network for network in _allowed_networks()):
        return None
    if ip.is_loopback:
        return "it points at a loopback address"
    if ip.is_link_local:
        return "it points at a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "it points at a carrier-grade NAT address"
    if ip.is_private:
        return "it points at a private network address"
    if ip.is_multicast:
        return "it points at a multicast address"
    if ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "it points at a reserved address"
    return None


def check_url_shape(url: str) -> tuple[str, str, int]:
    """Scheme, credentials and port; returns (scheme, host, port). Does not resolve the host."""
    if not isinstance(url, str) or len(url) > 2000:
        raise UrlRefused("Enter a URL of at most 2000 characters.", code="url_invalid")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("Enter a valid URL.", code="url_invalid") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("Only http:// and https:// URLs can be called.", code="url_scheme")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(
            "Credentials in the URL are not allowed; use a signed webhook instead.", code="url_credentials"
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("The URL has no host.", code="url_invalid")
    port = port or (443 if scheme == "https" else 80)
    allowed_ports = getattr(settings, "OUTBOUND_URL_ALLOWED_PORTS", None)
    if allowed_ports and port not in allowed_ports:
        raise UrlRefused(f"Port {port} is not allowed; use one of {sorted(allowed_ports)}.", code="url_port")
    return scheme, host, port


def resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"The host {host} could not be resolved.", code="url_unresolvable") from exc
    return sorted({info[4][0] for info in infos})


def validate_customer_url(url: str) -> str:
    """The save-time check. Returns the URL, stripped; raises UrlRefused with the reason."""
    _, host, port = check_url_shape(url)
    for address in resolve(host, port):
        reason = address_refusal(address)
        if reason:
            raise UrlRefused(f"This URL cannot be called: {reason} ({address}).", code="url_forbidden_address")
    return url.strip()
