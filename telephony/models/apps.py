from __future__ import annotations

import uuid

from django.db import models

from tenants.models import AccountOwnedModel


class CallControlApp(AccountOwnedModel):
    """A customer's call-control application: the call flow a number's calls run (fields grow with call control)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
