"""The inbound path's speed work: one query per decision, read live, and the edge's kept-open HTTP connection.

The decision itself (refusals, screening outcomes, targets) is tested in test_routing_inbound.py and
test_sip_edge_endpoints.py; these tests hold what made it fast, so that a change that brings the extra round
trips back fails here.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time

import psycopg
import pytest
from django.db import NotSupportedError, connection, transaction
from django.test import Client

from telephony.edge.config import edge_secret, render
from telephony.engine.routing import load_inbound, route_inbound
from telephony.models import Call, Event, PhoneNumber, SipConnection
from telephony.screening import screen_caller
from telephony.services import profiles as profile_services
from telephony.services import sip as sip_services
from telephony.services.events import event_emit_many
from telephony.tests.engine_support import next_number
from telephony.tests.isolation_sip import make_number
from telephony.tests.sip_edge_support import (
    TRUNK_IP,
    require_edge_services,
    start_kamailio,
    stop_kamailio,
    trunk_call,
)
from tenants.models import Account

pytestmark = pytest.mark.django_db

TRUNK = "203.0.113.9"


@pytest.fixture
def screened(alice):
    """A number with a TN profile (blacklist +1900*), routed to a SIP user of a domain."""
    profile = profile_services.tn_profile_create(account=alice.account, actor=None, name="Speed", block_action="busy")
    profile_services.caller_list_change(account=alice.account, actor=None, profile=profile, list_type="blacklist",
                                        add=["+1900*"])  # fmt: skip
    domain = sip_services.sip_domain_create(account=alice.account, actor=None, name=f"speed-{next_number()[-4:]}")
    user = sip_services.sip_user_create(account=alice.account, actor=None, domain=domain, login="desk",
                                        password="Winter-lake-2031")  # fmt: skip
    number = make_number(alice.account, next_number(), tn_profile=profile, sip_user=user)
    return number, profile, user


def test_it_decides_a_screened_call_to_a_sip_user_in_one_query(screened, django_assert_num_queries):
    number, _, user = screened

    with django_assert_num_queries(1):
        decision = route_inbound("+12125550100", number.number, source="simulated")
        # Everything the edge and the call record use next comes with it: no lazy load behind these.
        assert decision.sip_user.sip_uri == user.sip_uri
        assert decision.account.is_active and decision.number.tn_profile.block_action == "busy"
        assert decision.sip_user.account == decision.account

    assert decision.accepted and decision.target == "sip_user" and decision.screening.outcome == "no_match"


def test_a_block_costs_one_more_statement_its_hit(screened, django_assert_num_queries):
    number, profile, _ = screened

    with django_assert_num_queries(2):
        decision = route_inbound("+19005550123", number.number, source="simulated")

    assert not decision.accepted and decision.sip_code == 486
    assert profile.caller_entries.get(value="+1900").hit_count == 1


def test_a_list_change_applies_to_the_very_next_call(alice, screened):
    number, profile, _ = screened
    assert route_inbound("+13125550100", number.number, source="simulated").accepted

    profile_services.caller_list_change(account=alice.account, actor=None, profile=profile, list_type="blacklist",
                                        add=["+13125550100"])  # fmt: skip
    assert not route_inbound("+13125550100", number.number, source="simulated").accepted

    profile_services.caller_list_change(account=alice.account, actor=None, profile=profile, list_type="blacklist",
                                        remove=["+13125550100"])  # fmt: skip
    assert route_inbound("+13125550100", number.number, source="simulated").accepted


def test_a_new_target_applies_to_the_very_next_call(alice, screened):
    number, _, _ = screened
    trunk = sip_services.sip_connection_create(account=alice.account, actor=None, name="PBX", auth_type="ip",
                                               allowed_ips=[TRUNK], inbound_host="pbx.example.com")  # fmt: skip
    number.sip_user = None
    number.sip_connection = trunk
    number.save(update_fields=["sip_user", "sip_connection"])

    decision = route_inbound("+12125550100", number.number, source="simulated")

    assert decision.target == "sip_connection" and decision.sip_connection.inbound_host == "pbx.example.com"


def test_an_unscreened_number_reads_no_list(alice):
    number = make_number(alice.account, next_number())

    found, screening = load_inbound(number.number, "+19005550123")

    assert found == number and screening.allowed and screening.outcome == "no_profile"
    assert load_inbound("+19999999999", "+19005550123")[0] is None


CALLERS = ["+19005550123", "+19005550199", "+19015550100", "anonymous", "", "Restricted", "+12125550100",
           "+12125550111", "+13125550100", "1 (900) 555-0123", "garbage"]  # fmt: skip


def test_the_joined_read_screens_as_the_screening_module_does_and_reads_only_its_own_lists(alice, charlie):
    # The one-query read must decide exactly as telephony.screening on its own: whitelist mode, withheld callers,
    # exact entries over prefixes, the blacklist winning. Another account's lists never apply, even for a caller
    # they name.
    profile = profile_services.tn_profile_create(account=alice.account, actor=None, name="Mixed", block_action="busy")
    for list_type, values in (("blacklist", ["+1900*", "+19005550123", "anonymous", "+1212555011*"]),
                              ("whitelist", ["+1212*", "+12125550100", "+1900555*"])):  # fmt: skip
        profile_services.caller_list_change(account=alice.account, actor=None, profile=profile, list_type=list_type,
                                            add=values)  # fmt: skip
    theirs = profile_services.tn_profile_create(account=charlie.account, actor=None, name="Theirs")
    profile_services.caller_list_change(account=charlie.account, actor=None, profile=theirs, list_type="blacklist",
                                        add=["+12125550100", "+1313*"])  # fmt: skip
    mine = make_number(alice.account, next_number(), tn_profile=profile)
    unscreened = make_number(alice.account, next_number())

    for number in (mine, unscreened):
        for caller in CALLERS:
            found, decision = load_inbound(number.number, caller, record_hit=False)
            assert found == number
            fresh = PhoneNumber.objects.get(pk=number.pk)  # its profile read live by screen_caller itself
            assert decision == screen_caller(fresh, caller, record_hit=False), (number.number, caller)

    assert route_inbound("+12125550100", mine.number, source="simulated").screening.outcome == "whitelisted"
    assert route_inbound("+13135550100", mine.number, source="simulated").screening.outcome == "not_whitelisted"
    assert set(theirs.caller_entries.values_list("hit_count", flat=True)) == {0}


def test_a_released_number_or_an_inactive_sip_connection_takes_no_call(alice):
    trunk = sip_services.sip_connection_create(account=alice.account, actor=None, name="PBX", auth_type="ip",
                                               allowed_ips=[TRUNK], inbound_host="pbx.example.com")  # fmt: skip
    number = make_number(alice.account, next_number(), sip_connection=trunk)
    SipConnection.objects.filter(pk=trunk.pk).update(is_active=False)

    decision = route_inbound("+12125550100", number.number, source="simulated")

    assert decision.sip_code == 480 and decision.target == "sip_connection"
    PhoneNumber.objects.filter(pk=number.pk).update(status="released")
    assert route_inbound("+12125550100", number.number, source="simulated").sip_code == 404


def test_a_blocked_caller_counts_no_hit_on_a_number_that_refused_the_call_before_screening(alice, screened):
    number, profile, _ = screened
    PhoneNumber.objects.filter(pk=number.pk).update(voice_enabled=False)
    assert route_inbound("+19005550123", number.number, source="simulated").sip_code == 403
    PhoneNumber.objects.filter(pk=number.pk).update(voice_enabled=True)
    Account.objects.filter(pk=alice.account.pk).update(status="suspended")
    assert route_inbound("+19005550123", number.number, source="simulated").sip_code == 403

    assert profile.caller_entries.get(value="+1900").hit_count == 0


@pytest.mark.postgres
def test_the_hot_statements_are_prepared_once_per_connection(screened):
    number, _, _ = screened
    for _ in range(3):
        route_inbound("+12125550100", number.number, source="simulated")

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert sum("FROM telephony_phonenumber n" in statement for statement in prepared) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_keeps_routing_after_a_migration_changes_a_column_it_reads(alice):
    # A migration run from another process (a deploy) widens a column the prepared join returns: PostgreSQL then
    # refuses the statement prepared before ("cached plan must not change result type") on every execution, and
    # a kept-open connection (CONN_MAX_AGE, the pool) would refuse every call until it is recycled.
    number = make_number(alice.account, next_number())
    assert route_inbound("+12125550100", number.number, source="simulated").number == number
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        for width in (20, 16):  # and back, as a second deploy would: it heals every time
            other.execute(f"ALTER TABLE telephony_phonenumber ALTER COLUMN number TYPE varchar({width})")

            decision = route_inbound("+12125550100", number.number, source="simulated")

            assert decision.number == number
            assert route_inbound("+12125550100", number.number, source="simulated").number == number
    finally:
        other.execute("ALTER TABLE telephony_phonenumber ALTER COLUMN number TYPE varchar(16)")
        other.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_a_stale_prepared_statement_fails_that_transaction_only(alice):
    number = make_number(alice.account, next_number())
    assert route_inbound("+12125550100", number.number, source="simulated").number == number
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        other.execute("ALTER TABLE telephony_phonenumber ALTER COLUMN number TYPE varchar(20)")

        # A statement in a transaction cannot be run again; the transaction's rollback clears the stale one.
        with pytest.raises(NotSupportedError), transaction.atomic():
            route_inbound("+12125550100", number.number, source="simulated")
        with transaction.atomic():
            assert route_inbound("+12125550100", number.number, source="simulated").number == number
    finally:
        other.execute("ALTER TABLE telephony_phonenumber ALTER COLUMN number TYPE varchar(16)")
        other.close()


def test_several_objects_get_their_event_numbers_in_one_statement(alice):
    events = [(alice.account, "call.initiated", {}, "call", key, None) for key in ("a-leg", "b-leg", "a-leg")]
    event_emit_many(events[:1])

    emitted = event_emit_many(events)

    assert [(event.object_id, event.sequence) for event in emitted] == [("a-leg", 2), ("b-leg", 1), ("a-leg", 3)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_emitters_of_the_same_objects_in_any_order_get_gapless_numbers(alice):
    # Each emitter names the two objects in its own order; the counters are locked in one fixed order, so
    # none deadlocks, and every object's numbers come out unique and without a gap.
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def emitter(keys: tuple[str, str]) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(10):
                event_emit_many([(alice.account, "call.initiated", {}, "call", key, None) for key in keys])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=emitter, args=(keys,)) for keys in [("x", "y"), ("y", "x")] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for key in ("x", "y"):
        sequences = sorted(Event.objects.filter(object_id=key).values_list("sequence", flat=True))
        assert sequences == list(range(1, 41))


def test_the_route_endpoint_takes_the_secret_as_basic_credentials_and_says_how_long_it_took(alice):
    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    data = {"call_id": f"speed-{time.monotonic_ns()}", "from_tag": "f", "from_user": "+12125550100",
            "from_domain": TRUNK, "to_user": "+19995550000", "to_domain": "127.0.0.1", "source_ip": TRUNK}  # fmt: skip

    def basic(password: str) -> Client:
        return Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"kamailio:{password}".encode()).decode())

    assert basic("not-the-secret").post("/internal/sip/route", data).status_code == 403
    assert Client(HTTP_AUTHORIZATION="Basic %%%").post("/internal/sip/route", data).status_code == 403
    # Odd credentials are refused, never an error: no payload, not UTF-8, the secret without the user's colon.
    odd = ["Basic", "Basic ", "Basic \u00e9t\u00e9", "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
           "Basic " + base64.b64encode(edge_secret().encode()).decode(), "Bearer " + edge_secret()]  # fmt: skip
    assert {Client(HTTP_AUTHORIZATION=value).post("/internal/sip/route", data).status_code for value in odd} == {403}
    response = basic(edge_secret()).post("/internal/sip/route", data)

    assert response.status_code == 200 and response.json()["code"] == 404
    timing = dict(part.strip().split(";dur=") for part in response["Server-Timing"].split(","))
    assert set(timing) == {"decide", "cpu"} and float(timing["decide"]) > 0 and float(timing["cpu"]) >= 0


def test_kamailio_asks_for_routes_over_one_kept_open_connection():
    db = "postgres://kam:pw@db:5432/portal"
    text = render(db_url=db, portal_url="http://127.0.0.1:8123", secret="s3cret-value", http_timeout_s=3)

    assert 'modparam("http_client", "httpcon", "portal=>http://kamailio:s3cret-value@127.0.0.1:8123;timeout=3")' in text
    # The connection's defaults are taken when it is declared: they must come first.
    assert text.index('"keep_connections", 1') < text.index('"httpcon"')
    assert text.index('"authmethod", 1') < text.index('"httpcon"')
    assert 'http_connect("portal", "/internal/sip/route"' in text
    with pytest.raises(ValueError):
        render(db_url=db, portal_url="http://127.0.0.1:8123", secret="has@sign")


class _CountingProxy:
    """A TCP proxy in front of the live portal that counts the connections Kamailio opens through it."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_kamailio_keeps_its_connection_to_the_portal_open_between_invites(request, alice, tmp_path):
    require_edge_services()
    live_server = request.getfixturevalue("live_server")
    proxy = _CountingProxy(int(live_server.url.rsplit(":", 1)[1]))
    edge = start_kamailio(tmp_path / "kamailio", f"http://127.0.0.1:{proxy.port}", async_workers=2)
    try:
        carrier = sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                                     allowed_ips=[TRUNK])  # fmt: skip
        # The service refuses loopback addresses for customers' trunks; this trunk is sipp on loopback.
        SipConnection.objects.filter(pk=carrier.pk).update(allowed_ips=[TRUNK_IP])
        profile = profile_services.tn_profile_create(account=alice.account, actor=None, name="Block")
        profile_services.caller_list_change(account=alice.account, actor=None, profile=profile,
                                            list_type="blacklist", add=["+1900*"])  # fmt: skip
        number = make_number(alice.account, next_number(), tn_profile=profile)

        for _ in range(6):
            run = trunk_call(edge, did=number.number, caller="+19005550100", expected=603)
            assert run.ok, run.errors + edge.log()
    finally:
        stop_kamailio(edge)
        proxy.close()

    # Six route requests, at most one connection per async worker (before: one connection per INVITE).
    assert Call.objects.filter(phone_number=number, sip_code=603).count() == 6
    assert 1 <= proxy.connections <= 2
