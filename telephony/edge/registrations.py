"""The registrar's location table (sip_edge_location, written by Kamailio): who is registered where, now.

Only PostgreSQL has the table (migration 0016); elsewhere `edge_available()` is False and there is nothing
to read. Kamailio stores `expires` as a timestamp without time zone in its own clock, which runs in UTC
(`make sip` and the tests start it with TZ=UTC), so it is compared with UTC now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection

from telephony.models import SipUser

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


def sip_user_registrations(sip_user: SipUser) -> list[Registration]:
    return registrations_for_login(sip_user.login, sip_user.domain.domain)
