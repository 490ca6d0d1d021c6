"""A real SIP edge for tests: Kamailio on free ports against the test database and a live portal, driven by sipp.

`sip_edge` (fixture) renders the project's Kamailio configuration (telephony/edge/config.py) for the
pytest-django test database and the `live_server` portal, starts `kamailio -DD -E` and stops it after the
test. It needs PostgreSQL (Kamailio's auth_db and usrloc read and write the portal's tables), and the
`kamailio` and `sipp` programs (Debian: kamailio, kamailio-postgres-modules, kamailio-utils-modules,
kamailio-extra-modules, sip-tester; `.ci/run` installs them): without them the tests skip, or fail under
REQUIRE_SERVICES=1, as every service-backed test here does.

sipp plays the phones and trunks with the scenarios in telephony/tests/sipp/ (placeholders in capitals are
filled in here). Every sipp run gets a known Call-ID (`-cid_str`), so tests find the call it made.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenants.tests.fixtures import service_missing

SCENARIOS = Path(__file__).resolve().parent / "sipp"
TRUNK_IP = "127.0.0.2"  # the trunk's address in the tests: loopback, but not the phones' 127.0.0.1

ANSWERED = """
  <recv response="200" rrs="true">
    <action>
      <ereg regexp="tag=([^;>[:space:]]+)" search_in="hdr" header="To:" check_it="true"
            assign_to="to_header,callee_tag"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:CALLER@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>;tag=[$callee_tag]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="HOLD_MS"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:CALLER@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>;tag=[$callee_tag]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <Reference variables="to_header"/>
"""

REFUSED = """
  <recv response="EXPECTED"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:CALLER@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (Kamailio listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def require_edge_services() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("the SIP edge needs PostgreSQL: set DATABASE_URL=postgres://...")
    for program in ("kamailio", "sipp"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            service_missing(f"the SIP edge tests need `{program}` (apt-get install kamailio sip-tester; .ci/run does)")


@dataclass
class Edge:
    host: str
    port: int
    workdir: Path
    process: subprocess.Popen

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        return (self.workdir / "kamailio.log").read_text(errors="replace")[-4000:]


def start_kamailio(workdir: Path, portal_url: str, **overrides) -> Edge:
    from telephony.edge.config import render

    kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Every phone and the benchmarks' sipp send from one loopback address: no flood limit unless a test sets one.
    settings = {"port": port, "listen_host": "127.0.0.1", "portal_url": portal_url, "children": 2,
                "async_workers": 2, "events_interval_ms": 50, "flood_per_s": 0, **overrides}  # fmt: skip
    config = workdir / "kamailio.cfg"
    config.write_text(render(**settings))
    log = open(workdir / "kamailio.log", "w")  # noqa: SIM115 - closed in stop_kamailio
    # Kamailio writes the registrar's expiry times in its local clock; the portal reads them as UTC.
    process = subprocess.Popen(
        [kamailio, "-DD", "-E", "-f", str(config), "-Y", str(workdir)],
        cwd=workdir, env={**os.environ, "TZ": "UTC"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    process.log_file = log  # type: ignore[attr-defined]
    edge = Edge("127.0.0.1", int(settings["port"]), workdir, process)
    deadline = time.monotonic() + 20
    while not _answers_options(edge):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_kamailio(edge)
            pytest.fail(f"Kamailio did not start:\n{edge.log()}")
        time.sleep(0.1)
    return edge


def _answers_options(edge: Edge) -> bool:
    message = (
        f"OPTIONS sip:{edge.target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:{edge.target}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.3)
        probe.bind(("127.0.0.1", 0))
        probe.sendto(message.replace("127.0.0.1:9", f"127.0.0.1:{probe.getsockname()[1]}").encode(),
                     (edge.host, edge.port))  # fmt: skip
        try:
            return probe.recv(2000).startswith(b"SIP/2.0 200")
        except OSError:
            return False


def stop_kamailio(edge: Edge, *, crash: bool = False) -> None:
    """Stop Kamailio (SIGTERM, then SIGKILL after 10 s); `crash` kills it at once, as a crash or an OOM kill would."""
    if edge.process.poll() is None and not crash:
        edge.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            edge.process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(edge.process.pid, 9)
    edge.process.wait(timeout=10)
    edge.process.log_file.close()  # type: ignore[attr-defined]


@pytest.fixture(name="sip_edge")
def sip_edge_fixture(request, tmp_path):
    """Kamailio in front of the live test portal (see the module docstring). Data must be committed."""
    require_edge_services()
    live_server = request.getfixturevalue("live_server")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    edge = start_kamailio(tmp_path / "kamailio", live_server.url)
    yield edge
    stop_kamailio(edge)


# --- sipp ---------------------------------------------------------------------------------------------------


@dataclass
class SippRun:
    returncode: int
    errors: str
    call_id: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _scenario(edge: Edge, name: str, text: str) -> Path:
    path = edge.workdir / f"{name}-{uuid.uuid4().hex[:8]}.xml"
    path.write_text(text)
    return path


def _run(edge: Edge, scenario: Path, *args: str, ip: str = "127.0.0.1", port: int | None = None,
         timeout: int = 30, background: bool = False):  # fmt: skip
    call_id = f"edge-{uuid.uuid4().hex[:16]}"
    errors = scenario.with_suffix(".errors.log")
    command = [
        "sipp", edge.target, "-sf", str(scenario), "-m", "1", "-nostdin", "-i", ip, "-bind_local",
        *(["-p", str(port)] if port else []), "-timeout", f"{timeout}s", "-timeout_error", "-cid_str", f"{call_id}-%u",
        "-trace_err", "-error_file", str(errors), "-max_recv_loops", "100", *args,
    ]  # fmt: skip
    out = open(scenario.with_suffix(".out"), "w")  # noqa: SIM115 - closed when the run ends
    process = subprocess.Popen(command, cwd=edge.workdir, stdout=out, stderr=subprocess.STDOUT)
    process.out_file = out  # type: ignore[attr-defined]
    process.call_id = f"{call_id}-1"  # type: ignore[attr-defined]
    process.errors_path = errors  # type: ignore[attr-defined]
    if background:
        return process
    return finish(process, timeout + 10)


def finish(process: subprocess.Popen, timeout: float = 40) -> SippRun:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.out_file.close()  # type: ignore[attr-defined]
    errors_path: Path = process.errors_path  # type: ignore[attr-defined]
    errors = errors_path.read_text(errors="replace")[-3000:] if errors_path.exists() else ""
    return SippRun(process.returncode, errors, process.call_id)  # type: ignore[attr-defined]


def register(edge: Edge, login: str, domain: str, password: str, *, expected: int = 200, port: int | None = None,
             expires: int = 600) -> SippRun:  # fmt: skip
    """REGISTER login@domain from 127.0.0.1:`port`; the run succeeds when the final answer is `expected`."""
    scenario = _scenario(edge, "register", (SCENARIOS / "register.xml").read_text().replace("EXPECTED", str(expected)))
    users = edge.workdir / f"users-{uuid.uuid4().hex[:8]}.csv"
    users.write_text(
        f"SEQUENTIAL\n{login};{domain};{password};{expires};[authentication username={login} password={password}]\n"
    )
    return _run(edge, scenario, "-inf", str(users), port=port)


def answer_calls(edge: Edge, port: int, *, busy: bool = False, timeout: int = 40,
                 from_user: str | None = None) -> subprocess.Popen:  # fmt: skip
    """A phone on 127.0.0.1:`port` that answers (or refuses busy) the next call; finish() it to see how it went.
    With `from_user`, the run fails unless the INVITE's From carries that user part."""
    name = "uas_busy.xml" if busy else "uas_answer.xml"
    text = (SCENARIOS / name).read_text()
    if from_user is not None:
        check = (
            '<recv request="INVITE" crlf="true">\n    <action>\n'
            f'      <ereg regexp="sip:{re.escape(from_user)}@" search_in="hdr" header="From:" check_it="true"'
            ' assign_to="from_seen"/>\n    </action>\n  </recv>\n  <Reference variables="from_seen"/>'
        )
        assert '<recv request="INVITE" crlf="true"/>' in text
        text = text.replace('<recv request="INVITE" crlf="true"/>', check, 1)
    scenario = _scenario(edge, name.removesuffix(".xml"), text)
    return _run(edge, scenario, port=port, timeout=timeout, background=True)


def call_user(edge: Edge, *, caller: str, password: str, domain: str, callee: str, hold_ms: int = 1000,
              port: int | None = None) -> SippRun:  # fmt: skip
    """`caller` (a SIP user of `domain`) calls `callee` through the edge, authenticating; answered and hung up."""
    text = (SCENARIOS / "uac_call.xml").read_text()
    text = text.replace("DOMAIN", domain).replace("CALLER", caller).replace("HOLD_MS", str(hold_ms))
    return _run(edge, _scenario(edge, "uac", text), "-s", callee, "-au", caller, "-ap", password, port=port)


def trunk_call(edge: Edge, *, did: str, caller: str, expected: int = 200, hold_ms: int = 1000,
               ip: str = TRUNK_IP) -> SippRun:  # fmt: skip
    """A trunk at `ip` sends a call from `caller` to `did`: answered and hung up (200), or refused `expected`."""
    branch = ANSWERED if expected == 200 else REFUSED
    text = (SCENARIOS / "trunk_invite.xml").read_text().replace("BRANCH", branch)
    text = text.replace("CALLER", caller).replace("HOLD_MS", str(hold_ms)).replace("EXPECTED", str(expected))
    return _run(edge, _scenario(edge, "trunk", text), "-s", did, ip=ip)
