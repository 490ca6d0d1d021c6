"""Outbound calling rules of an account: its pace, its concurrency, where it may call; and its dispatch queue.

Staff set an account's policy in the admin; fields left empty take the platform's settings (OUTBOUND_* in
portal/settings/base.py). The row also holds the account's pacing state, `next_dispatch_at`: each call placed
takes the next dispatch slot (one every 1/calls_per_second s) under a lock of this row, so single calls and
the calls of bulk campaigns share one pace. See telephony/services/outbound.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenants.models import AccountOwnedModel


class OutboundPolicy(AccountOwnedModel):
    """The rules an account's outbound calls follow (pace, concurrency, queue wait, destinations), set by staff."""

    calls_per_second = models.FloatField(
        null=True, blank=True, help_text="Calls dispatched per second; empty = OUTBOUND_CALLS_PER_SECOND."
    )
    max_concurrent_calls = models.PositiveIntegerField(
        null=True, blank=True, help_text="Outbound calls up at once; empty = OUTBOUND_MAX_CONCURRENT_CALLS."
    )
    max_queue_wait_s = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Longest a call waits for a dispatch slot or a free channel before it fails; "
        "empty = OUTBOUND_MAX_QUEUE_WAIT_S.",
    )
    allowed_countries = models.JSONField(
        default=list,
        blank=True,
        help_text='ISO country codes the account may call, e.g. ["US", "CA"]; empty = OUTBOUND_ALLOWED_COUNTRIES '
        "(which, empty, allows every country).",
    )
    allow_premium_rate = models.BooleanField(
        default=False, help_text="Premium-rate destinations (OUTBOUND_PREMIUM_PREFIXES and numbering plans)."
    )
    next_dispatch_at = models.DateTimeField(null=True, blank=True, help_text="Pacing state: the next free slot.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "outbound policy"
        verbose_name_plural = "outbound policies"
        constraints = [
            models.UniqueConstraint(fields=["account"], name="telephony_outboundpolicy_one_per_account"),
            models.CheckConstraint(
                condition=Q(calls_per_second__isnull=True) | Q(calls_per_second__gt=0),
                name="telephony_outboundpolicy_rate_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Outbound policy of {self.account}"

    @property
    def rate(self) -> float:
        return float(self.calls_per_second or settings.OUTBOUND_CALLS_PER_SECOND)

    @property
    def concurrency(self) -> int:
        value = self.max_concurrent_calls
        return int(settings.OUTBOUND_MAX_CONCURRENT_CALLS if value is None else value)

    @property
    def queue_wait_s(self) -> int:
        value = self.max_queue_wait_s
        return int(settings.OUTBOUND_MAX_QUEUE_WAIT_S if value is None else value)

    @property
    def countries(self) -> list[str]:
        chosen = self.allowed_countries or list(settings.OUTBOUND_ALLOWED_COUNTRIES)
        return [str(code).upper() for code in chosen]
