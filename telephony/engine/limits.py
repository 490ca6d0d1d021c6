"""Channel limits: how many legs may be up at once per app, per SIP connection and per account.

A channel is a leg that has not ended (queued, initiated, ringing, in progress). Limits:
- an app's `channel_limit` counts the A-legs running it (the calls it handles);
- a SIP connection's `channel_limit` counts the legs the platform places over it (the B-legs of calls
  forwarded to it; the A-leg routed to it is the same call and does not count twice);
- an account may have at most CALL_ACCOUNT_CHANNEL_LIMIT legs up (0: no limit; the account model has no
  field of its own for it yet).

Admission of an inbound call is exact: `admit_inbound` runs in the transaction that creates the leg and
first locks the rows whose limit it counts (account, app, connection, always in that order, so two
admissions never deadlock), so concurrent calls cannot both take the last channel. B-legs of a Dial are
counted without a lock (a Dial of several targets may overshoot by the legs of a concurrent Dial); the
inbound side is where floods arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from telephony.models import FINAL_STATUSES, Call, CallControlApp, SipConnection
from tenants.models import Account

LIVE_STATUSES = [s.value for s in Call.Status if s not in FINAL_STATUSES]


@dataclass(frozen=True)
class LimitRefusal:
    sip_code: int
    cause: int
    status: str
    reason: str


def account_limit() -> int:
    return int(getattr(settings, "CALL_ACCOUNT_CHANNEL_LIMIT", 0) or 0)


def _live(**filters) -> int:
    return Call.objects.filter(status__in=LIVE_STATUSES, **filters).count()


def admit_inbound(*, account: Account, app: CallControlApp | None, connection: SipConnection | None):
    """None if a new inbound leg fits every limit, else the refusal. Call inside the creating transaction."""
    limit = account_limit()
    if limit:
        Account.objects.select_for_update().filter(pk=account.pk).values_list("pk").first()
        if _live(account=account) >= limit:
            return LimitRefusal(
                503, 34, Call.Status.FAILED, f"The account's channel limit ({limit} concurrent legs) is reached."
            )
    if app is not None and app.channel_limit is not None:
        CallControlApp.objects.select_for_update().filter(pk=app.pk).values_list("pk").first()
        if _live(app=app, parent__isnull=True) >= app.channel_limit:
            return LimitRefusal(
                486, 17, Call.Status.BUSY, f"The app's channel limit ({app.channel_limit} concurrent calls) is reached."
            )
    if connection is not None and connection.channel_limit is not None:
        SipConnection.objects.select_for_update().filter(pk=connection.pk).values_list("pk").first()
        if _live(sip_connection=connection, parent__isnull=False) >= connection.channel_limit:
            return LimitRefusal(
                486,
                17,
                Call.Status.BUSY,
                f"The SIP connection's channel limit ({connection.channel_limit} concurrent calls) is reached.",
            )
    return None


def admit_outbound(*, account: Account, connection: SipConnection | None, adding: int) -> LimitRefusal | None:
    """None if `adding` more outbound legs fit the account's and the connection's limits (counted, not locked)."""
    limit = account_limit()
    if limit and _live(account=account) + adding > limit:
        return LimitRefusal(
            503, 34, Call.Status.FAILED, f"The account's channel limit ({limit} concurrent legs) is reached."
        )
    if (
        connection is not None
        and connection.channel_limit is not None
        and _live(sip_connection=connection, parent__isnull=False) + adding > connection.channel_limit
    ):
        return LimitRefusal(
            503,
            34,
            Call.Status.FAILED,
            f"The SIP connection's channel limit ({connection.channel_limit} concurrent calls) is reached.",
        )
    return None
