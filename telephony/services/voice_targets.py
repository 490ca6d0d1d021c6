"""Pointing numbers at a voice target (a call-control app or a SIP connection), in bulk.

A number has one voice target at most (a database constraint says so), so routing a number to a target
takes it off whatever it had. Apps and SIP connections both offer `{"add": [...], "remove": [...]}` on
their numbers; this is the one implementation behind both.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, Q
from django.utils import timezone

from telephony.models import CallControlApp, PhoneNumber, SipConnection, SipUser
from telephony.services.sip.rules import FieldErrors
from tenants.models import Account
from tenants.scoping import parse_public_id
from tenants.services import Actor, audit_record

MAX_NUMBER_CHANGES = 1000
TARGET_MODELS = {"call_control_app": CallControlApp, "sip_connection": SipConnection, "sip_user": SipUser}


def resolve_numbers(account: Account, refs: Any, field: str, errors: FieldErrors) -> list[tuple[int, PhoneNumber]]:
    """(position, number) for each item (an id or E.164), locked for the change; unknown items are positional errors."""
    if not isinstance(refs, (list, tuple)):
        errors.add(field, "Send a list of number ids or E.164 numbers.", "invalid")
        return []
    if len(refs) > MAX_NUMBER_CHANGES:
        errors.add(field, f"At most {MAX_NUMBER_CHANGES} numbers per request.", "too_many")
        return []
    ids = {parse_public_id(ref) for ref in refs if isinstance(ref, str) and not ref.startswith("+")} - {None}
    e164 = {ref for ref in refs if isinstance(ref, str) and ref.startswith("+")}
    rows = (
        PhoneNumber.objects.for_account(account)
        .filter(status=PhoneNumber.Status.ACTIVE)
        .filter(Q(public_id__in=ids) | Q(number__in=e164))
        .select_for_update()
    )
    found: dict[str, PhoneNumber] = {}
    for row in rows:
        found[str(row.public_id)] = row
        found[row.number] = row
    resolved = []
    for index, ref in enumerate(refs):
        parsed = parse_public_id(ref) if isinstance(ref, str) and not ref.startswith("+") else None
        key = str(parsed) if parsed else ref if isinstance(ref, str) else None
        number = found.get(key) if key else None
        if number is None:
            # Another account's number is exactly as unknown as a number that does not exist.
            errors.add(f"{field}.{index}", f"No number “{ref}” in this account.", "not_found")
        else:
            resolved.append((index, number))
    return resolved


def replaced_targets(numbers: list[PhoneNumber]) -> dict[str, dict[str, str]]:
    """{E.164: {kind: public id}} of the voice targets these numbers are taken off; one query per kind."""
    by_kind: dict[str, set[int]] = {}
    for number in numbers:
        for kind in TARGET_MODELS:
            if getattr(number, f"{kind}_id"):
                by_kind.setdefault(kind, set()).add(getattr(number, f"{kind}_id"))
    public_ids = {
        kind: dict(TARGET_MODELS[kind].objects.filter(pk__in=pks).values_list("pk", "public_id"))
        for kind, pks in by_kind.items()
    }
    replaced: dict[str, dict[str, str]] = {}
    for number in numbers:
        for kind, ids in public_ids.items():
            pk = getattr(number, f"{kind}_id")
            if pk in ids:
                replaced[number.number] = {kind: str(ids[pk])}
    return replaced


def numbers_route(
    *, account: Account, actor: Actor, target: Model, field: str, add: Any = None, remove: Any = None, action: str
) -> bool:
    """Route the `add` numbers to `target` (stored in PhoneNumber.<field>) and take the `remove` ones off it.

    All or nothing; errors are positional (`add.2`). Adding a number already there, or removing one that
    is not, changes nothing. Returns whether anything changed. Call inside the caller's transaction, with
    the target row locked.
    """
    errors = FieldErrors()
    to_add = resolve_numbers(account, add or [], "add", errors)
    to_remove = resolve_numbers(account, remove or [], "remove", errors)
    adding = {number.pk for _, number in to_add}
    for index, number in to_remove:
        if number.pk in adding:
            errors.add(f"remove.{index}", f"{number.number} is also in add.", "conflict")
    errors.raise_if_any()

    now = timezone.now()
    added = {n.pk: n for _, n in to_add if getattr(n, f"{field}_id") != target.pk}
    removed = {n.pk: n for _, n in to_remove if getattr(n, f"{field}_id") == target.pk}
    if not added and not removed:
        return False
    replaced = replaced_targets(list(added.values()))
    if added:
        cleared = dict.fromkeys(TARGET_MODELS)
        PhoneNumber.objects.filter(pk__in=added).update(**{**cleared, field: target, "updated_at": now})
    if removed:
        PhoneNumber.objects.filter(pk__in=removed, **{field: target}).update(**{field: None, "updated_at": now})
    audit_record(
        account=account,
        actor=actor,
        action=action,
        obj=target,
        after={
            "added": sorted(n.number for n in added.values()),
            "removed": sorted(n.number for n in removed.values()),
            "replaced_targets": replaced,
        },
    )
    return True
