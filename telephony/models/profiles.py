from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from tenants.models import AccountOwnedModel


class TnProfile(AccountOwnedModel):
    """A screening policy shared by an account's numbers: who may call them, and what happens to the rest."""

    class BlockAction(models.TextChoices):
        REJECT = "reject", "Reject (SIP 603 Decline)"
        BUSY = "busy", "Busy (SIP 486 Busy Here)"
        HANGUP = "hangup", "Answer, then hang up"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    block_action = models.CharField(max_length=16, choices=BlockAction.choices, default=BlockAction.REJECT)
    # Sizes of the two lists, kept by the list services (recounted in the same transaction as each change)
    # so pages and the admin can show them without counting up to 100,000 rows per profile. The call path
    # does not trust them: it asks the index whether the whitelist is empty.
    blacklist_count = models.PositiveIntegerField(default=0, editable=False)
    whitelist_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="telephony_tnprofile_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class CallerListEntry(models.Model):
    """One caller-ID rule on a profile's blacklist or whitelist: a number, a prefix, or withheld caller ID."""

    class List(models.TextChoices):
        BLACKLIST = "blacklist", "Blacklist"
        WHITELIST = "whitelist", "Whitelist"

    class Kind(models.TextChoices):
        NUMBER = "number", "Number"  # value: E.164, matched exactly
        PREFIX = "prefix", "Prefix"  # value: "+" and leading digits, written "+1900*" by customers
        ANONYMOUS = "anonymous", "Anonymous"  # value: "anonymous"

    profile = models.ForeignKey(TnProfile, on_delete=models.CASCADE, related_name="caller_entries")
    list_type = models.CharField(max_length=16, choices=List.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=20)
    note = models.CharField(max_length=200, blank=True)
    hit_count = models.PositiveIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["value", "id"]
        indexes = [
            # Screening probes (profile, value IN caller's number and prefixes) on every call; list pages walk
            # one list in value order and filter by value prefix. list_type is last so both stay in the index.
            models.Index(fields=["profile", "value", "list_type"], name="telephony_callerentry_lookup"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "list_type", "kind", "value"], name="telephony_callerlistentry_unique"
            ),
            models.CheckConstraint(
                condition=Q(list_type__in=["blacklist", "whitelist"]) & Q(kind__in=["number", "prefix", "anonymous"]),
                name="telephony_callerlistentry_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.list_type}: {self.display}"

    @property
    def display(self) -> str:
        return f"{self.value}*" if self.kind == self.Kind.PREFIX else self.value
