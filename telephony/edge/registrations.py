"""The registrar's location table (sip_edge_location, written by Kamailio): who is registered where, now.

Only PostgreSQL has the table (migration 0016); elsewhere `edge_available()` is False and there is nothing
to read. Kamailio stores `expires` as a timestamp without time zone in its own clock, which runs in UTC
(`make sip` and the tests start it with TZ=UTC), so it is compared with UTC now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from telephony.models import SipDomain, SipUser

_SELECT = """
SELECT contact, received, user_agent, expires, callid, last_modified, socket
  FROM sip_edge_location
 WHERE username = %s AND domain = %s AND expires > (now() AT TIME ZONE 'UTC')
 ORDER BY q DESC, last_modified DESC, id DESC
"""


@dataclass(frozen=True)
class Registration:
    """One registered contact of a login: where a softphone can be reached, and until when."""

    contact: str
    received: str  # the source address when it differs from the contact (behind NAT), else ""
    user_agent: str
    expires_at: datetime
    last_modified: datetime
    socket: str

    @property
    def source(self) -> str:
        """Where the REGISTER came from: the NAT's address when recorded, else the contact's host."""
        if self.received:
            return self.received.removeprefix("sip:")
        address = self.contact.split(":", 1)[-1].split(";", 1)[0]
        return address.rsplit("@", 1)[-1]

    @property
    def expires_in(self) -> int:
        return max(0, int((self.expires_at - datetime.now(UTC)).total_seconds()))


def edge_available() -> bool:
    return connection.vendor == "postgresql"


def registrations_for_login(username: str, domain: str) -> list[Registration]:
    """The live registrations of `username@domain` (newest first); [] where there is no edge."""
    if not edge_available():
        return []
    with connection.cursor() as cursor:
        cursor.execute(_SELECT, [username, domain])
        rows = cursor.fetchall()
    return [
        Registration(
            contact=contact,
            received=received or "",
            user_agent=user_agent or "",
            expires_at=expires.replace(tzinfo=UTC),
            last_modified=modified.replace(tzinfo=UTC),
            socket=socket or "",
        )
        for contact, received, user_agent, expires, _callid, modified, socket in rows
    ]


def _registered_user_ids() -> RawSQL:
    users, domains = SipUser._meta.db_table, SipDomain._meta.db_table
    return RawSQL(  # noqa: S611 - our table names and constants only
        f"SELECT u.id FROM {users} u JOIN {domains} d ON d.id = u.domain_id WHERE EXISTS ("  # noqa: S608 - ours
        "SELECT 1 FROM sip_edge_location l WHERE l.username = u.login AND l.domain = d.domain "
        "AND l.expires > (now() AT TIME ZONE 'UTC'))",
        [],
    )


def online_q() -> Q:
    """SIP users online now: with a contact in the registrar whose expiry has not passed, as the portal shows them.

    The stored `state` counts too: it is what the simulated switch sets where there is no edge (SQLite), and it is
    never set to online by the edge, whose registrations live only in its location table.
    """
    online = Q(state=SipUser.State.ONLINE)
    if edge_available():
        online |= Q(pk__in=_registered_user_ids())
    return online


def mark_online(users: Iterable[SipUser]) -> None:
    """Set `is_online` (online_q) on each of `users` (their domains loaded) with one query: a page of a list."""
    users = list(users)
    registered: set[tuple[str, str]] = set()
    if edge_available() and users:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT username, domain FROM sip_edge_location WHERE expires > (now() AT TIME ZONE 'UTC') "
                "AND (username, domain) IN (SELECT * FROM unnest(%s::varchar[], %s::varchar[]))",
                [[user.login for user in users], [user.domain.domain for user in users]],
            )
            registered = set(cursor.fetchall())
    for user in users:
        user.is_online = user.state == SipUser.State.ONLINE or (user.login, user.domain.domain) in registered


def sip_user_online(sip_user: SipUser) -> bool:
    """online_q for one user: as mark_online set it, else one lookup."""
    if getattr(sip_user, "is_online", None) is None:
        mark_online([sip_user])
    return sip_user.is_online


def sip_user_registrations(sip_user: SipUser) -> list[Registration]:
    return registrations_for_login(sip_user.login, sip_user.domain.domain)
