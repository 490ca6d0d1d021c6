"""Opt-outs: a destination's STOP creates one, its START lifts it, staff may remove one in admin.

The account itself cannot delete an opt-out (no API or portal action): under CTIA practice only the consumer
withdraws it, by texting START; staff can for a documented mistake. Each change is an `opt_out.created` or
`opt_out.deleted` event in the same transaction (webhooks and the websocket stream, through the outbox). A new
opt-out also fails the messages still queued to the destination (`opted_out`).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from telephony.models import Message, OptOut
from telephony.services.events import event_emit
from telephony.services.messaging.sending import _change
from tenants.models import Account
from tenants.services import actor_label


def opt_out_payload(
    opt_out: OptOut, *, keyword: str | None = None, via_number: str | None = None, lifted_by: str | None = None
) -> dict:
    """`keyword` and `via_number`: what was texted, and to which number (a START's, not the STOP's)."""
    payload = {
        "opt_out_id": str(opt_out.public_id),
        "number": opt_out.number,
        "keyword": keyword or opt_out.keyword,
        "via_number": via_number or opt_out.via_number,
        "created_at": opt_out.created_at,
    }
    if lifted_by:
        payload["lifted_by"] = lifted_by
    return payload


@transaction.atomic
def opt_out_record(*, account: Account, number: str, keyword: str, via_number: str) -> OptOut | None:
    """The destination `number` texted STOP to `via_number`: record it. None if it had opted out already."""
    opt_out, created = OptOut.objects.get_or_create(
        account=account, number=number, defaults={"keyword": keyword.strip().upper()[:16], "via_number": via_number}
    )
    if not created:
        return None
    event_emit(account=account, type="opt_out.created", payload=opt_out_payload(opt_out), obj=opt_out)
    _fail_queued(account, number)
    return opt_out


def _fail_queued(account: Account, number: str) -> None:
    """Messages to `number` still waiting for their sender's slot do not go: after a STOP only its confirmation
    may (CTIA), and a long code's queue can hold a burst for minutes. One a worker has claimed is at the carrier."""
    now = timezone.now()
    waiting = (
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("account", "profile")
        .filter(account=account, to_number=number, direction=Message.Direction.OUTBOUND, status=Message.Status.QUEUED)
        .filter(auto_reply="")
    )
    for message in waiting:
        _change(
            message,
            Message.Status.FAILED,
            now,
            "opted_out",
            "The destination opted out (texted STOP) before it was sent.",
        )


@transaction.atomic
def opt_out_lift(*, account: Account, number: str, keyword: str, via_number: str = "") -> bool:
    """The destination texted START (to `via_number`): lift its opt-out. False if it had none."""
    return _delete(
        OptOut.objects.filter(account=account, number=number), keyword=keyword, via_number=via_number,
        lifted_by="consumer",
    )  # fmt: skip


@transaction.atomic
def opt_out_remove(*, staff, opt_out: OptOut) -> bool:
    """Staff lift an opt-out (admin only, e.g. one recorded by mistake). False if it was already gone."""
    return _delete(OptOut.objects.filter(pk=opt_out.pk), keyword=None, via_number="", lifted_by="staff", staff=staff)


def _delete(queryset: QuerySet, *, keyword: str | None, via_number: str, lifted_by: str, staff=None) -> bool:
    opt_out = queryset.select_related("account").select_for_update().first()
    if opt_out is None:
        return False
    payload = opt_out_payload(
        opt_out, keyword=keyword.strip().upper()[:16] if keyword else None, via_number=via_number, lifted_by=lifted_by
    )
    if staff is not None:
        payload["removed_by"] = actor_label(staff)
    opt_out.delete()
    event_emit(account=opt_out.account, type="opt_out.deleted", payload=payload, obj=opt_out)
    return True
