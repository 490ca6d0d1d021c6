"""The one HTTP client for customer URLs: the outbound policy at connect time, no redirects, limits.

The receivers are real local servers. DNS answers come from a stand-in for the system resolver
(`socket.getaddrinfo`, outside the product), so a name can resolve to a private address on demand.
"""

from __future__ import annotations

import socket

import pytest

from telephony import http
from telephony.tests.receivers import Answer, Receiver, receiver_fixture  # noqa: F401 - the receiver fixture
from telephony.urlpolicy import validate_customer_url


@pytest.fixture
def strict(settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = []
    settings.OUTBOUND_URL_ALLOWED_PORTS = []


class Names(dict):
    """Names the stand-in resolver answers for, and the lookups it was asked."""

    lookups: list[str]


@pytest.fixture
def dns(monkeypatch):
    """dns["name"] = ["10.1.2.3", ...] makes the system resolver answer that; dns.lookups lists the questions."""
    answers = Names()
    answers.lookups = lookups = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            lookups.append(name)
            family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
            return [(family(a), socket.SOCK_STREAM, 6, "", (a, port or 0)) for a in answers[name]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:{port}/hooks",
        "http://10.0.0.8/hooks",
        "http://100.64.0.1/hooks",
        "http://[::ffff:127.0.0.1]:{port}/hooks",
        "http://0.0.0.0:{port}/hooks",
    ],
)
def test_it_refuses_forbidden_addresses_when_calling(strict, receiver, url):
    result = http.request("POST", url.format(port=receiver.port), content=b"{}")

    assert result.status_code is None
    assert result.error_kind == "refused"
    assert receiver.count() == 0


def test_loopback_is_called_when_the_allow_list_names_it(settings, receiver):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = ["127.0.0.1/32"]

    result = http.request("POST", receiver.url, content=b"{}")

    assert result.status_code == 200
    assert receiver.count() == 1


def test_it_refuses_a_hostname_that_resolves_to_a_private_address(strict, dns):
    dns["internal.example.test"] = ["10.1.2.3"]

    result = http.request("POST", "http://internal.example.test/hooks", content=b"{}")

    assert result.error_kind == "refused"
    assert "private network" in result.error


def test_it_refuses_a_name_if_any_of_its_addresses_is_forbidden(strict, dns):
    dns["mixed.example.test"] = ["93.184.216.34", "10.0.0.1"]

    result = http.request("POST", "http://mixed.example.test/hooks", content=b"{}")

    assert result.error_kind == "refused"


def test_a_name_that_passed_at_save_time_is_refused_when_it_now_points_inside(strict, dns, receiver):
    dns["rebind.example.test"] = ["93.184.216.34"]
    url = validate_customer_url(f"http://rebind.example.test:{receiver.port}/hooks")
    dns["rebind.example.test"] = ["127.0.0.1"]

    result = http.request("POST", url, content=b"{}")

    assert result.error_kind == "refused"
    assert receiver.count() == 0


def test_it_connects_to_the_address_it_checked_without_resolving_again(dns, receiver):
    dns["hooks.example.test"] = ["127.0.0.1"]

    result = http.request("POST", f"http://hooks.example.test:{receiver.port}/hooks", content=b"{}")

    assert result.status_code == 200
    assert dns.lookups == ["hooks.example.test"]
    assert receiver.requests[0].headers["host"] == f"hooks.example.test:{receiver.port}"


def test_it_does_not_follow_a_redirect_to_a_private_address(settings, receiver):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    inside = Receiver(host="127.0.0.2")
    try:
        receiver.respond(Answer(302, b"", {"Location": f"http://127.0.0.2:{inside.port}/admin"}))

        result = http.request("POST", receiver.url, content=b"{}")

        assert result.status_code == 302
        assert inside.count() == 0
    finally:
        inside.stop()


@pytest.mark.parametrize(
    "url,words",
    [("ftp://93.184.216.34/x", "http"), ("http://user:pw@93.184.216.34/x", "Credentials")],
)
def test_it_refuses_bad_schemes_and_credentials_when_calling(url, words):
    result = http.request("POST", url, content=b"{}")

    assert result.error_kind == "refused"
    assert words in result.error


def test_it_refuses_ports_outside_the_allowed_list(settings, receiver):
    settings.OUTBOUND_URL_ALLOWED_PORTS = [443]

    result = http.request("POST", receiver.url, content=b"{}")

    assert result.error_kind == "refused"
    assert receiver.count() == 0


def test_it_reads_at_most_64_kb_of_a_response(receiver):
    receiver.respond(Answer(200, b"x" * (1024 * 1024)))

    result = http.request("POST", receiver.url, content=b"{}")

    assert result.status_code == 200
    assert len(result.body) == http.MAX_BODY_READ


def test_a_slow_receiver_hits_the_total_deadline(receiver):
    receiver.respond(Answer(200, b"late", delay=2.0))

    result = http.request("POST", receiver.url, content=b"{}", timeout=0.5)

    assert result.error_kind == "timeout"
    assert result.duration < 1.5


def test_a_closed_port_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = http.request("POST", f"http://127.0.0.1:{port}/", content=b"{}")

    assert result.error_kind == "connect"


def test_proxy_settings_in_the_environment_are_ignored(monkeypatch, receiver):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")

    result = http.request("POST", receiver.url, content=b"{}")

    assert result.status_code == 200


def test_a_server_that_trickles_its_answer_cannot_stretch_the_deadline():
    """Each read is short, but the total deadline still ends the request."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def trickle():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            try:
                for _ in range(100):
                    conn.sendall(b"x")
                    threading.Event().wait(0.1)
            except OSError:
                pass  # the client gave up, as it should

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    try:
        result = http.request("POST", f"http://127.0.0.1:{port}/", content=b"{}", timeout=0.8)
    finally:
        listener.close()

    assert result.error_kind == "timeout"
    assert result.duration < 1.3
