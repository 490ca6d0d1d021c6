"""What the SIP pages share: service errors on forms, the page object lookup, number choices."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from telephony.models import PhoneNumber
from tenants.models import AuditEntry


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError on the form: `allowed_ips.2` lands under allowed_ips, unknown fields on top."""
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for field, errors in exc.error_dict.items():
        name = field.split(".")[0]
        target = name if name in form.fields else None
        for error in errors:
            for message in error.messages:
                form.add_error(target, message)


def split_list(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,;]+", value or "") if item]


def active_numbers(account):
    return PhoneNumber.objects.for_account(account).filter(status=PhoneNumber.Status.ACTIVE).order_by("number")


def audit_for(account, obj, limit: int = 20):
    entries = AuditEntry.objects.for_account(account).filter(
        object_type=obj._meta.model_name, object_id=str(obj.public_id)
    )
    return entries.order_by("-created_at", "-id")[:limit]


class ObjectMixin:
    """The page's object, looked up once within the account (another account's id is a 404)."""

    object_queryset = None

    def get_page_object(self):
        if not hasattr(self, "_object"):
            self._object = self.get_object_or_404(self.object_queryset, self.kwargs["id"])
        return self._object


class NumberChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.number} — {obj.description}" if obj.description else obj.number
