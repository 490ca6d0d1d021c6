"""Writes for TN profiles and their caller lists (blacklist and whitelist).

A list change is all-or-nothing: every item is validated first, errors name the item by position
(`add.3`), and only then does one transaction apply the change with bulk statements. Changes to one
profile's lists are serialised by a row lock on the profile, which also keeps its list counts exact.
Reading the lists on a call is telephony/screening.py's job.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from telephony.models import CallerListEntry, PhoneNumber, TnProfile
from tenants.models import Account
from tenants.services import Actor, audit_record

# Most list items (adds plus removes) one API request may carry; bigger lists go in several requests.
MAX_CHANGES_PER_REQUEST = 10_000
# Most rows one CSV import may hold.
MAX_IMPORT_ROWS = 100_000
# How many of the values added or removed an audit entry spells out; the counts are always complete.
AUDIT_VALUES_LIMIT = 20
NOTE_MAX_LENGTH = CallerListEntry._meta.get_field("note").max_length

_PREFIX = re.compile(r"\+(\d{1,14})\*")
_BATCH = 2_000


# --- Profiles ----------------------------------------------------------------------------------------


class ProfileInUse(ValidationError):
    """Deleting a profile that numbers still use: the API answers 409, the portal says how many numbers."""


def _profile_snapshot(profile: TnProfile) -> dict:
    return {"name": profile.name, "description": profile.description, "block_action": profile.block_action}


def _check_name_free(account: Account, name: str, profile: TnProfile | None = None) -> None:
    others = TnProfile.objects.for_account(account).filter(name=name)
    if profile is not None:
        others = others.exclude(pk=profile.pk)
    if others.exists():
        raise ValidationError(
            {"name": ValidationError("This account already has a TN profile with this name.", code="duplicate_name")}
        )


def _save_profile(profile: TnProfile) -> None:
    try:
        with transaction.atomic():  # a savepoint, so a lost race on the name leaves the outer transaction usable
            profile.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"name": ValidationError("This account already has a TN profile with this name.", code="duplicate_name")}
        ) from exc


@transaction.atomic
def tn_profile_create(
    *,
    account: Account,
    actor: Actor,
    name: str,
    description: str = "",
    block_action: str = TnProfile.BlockAction.REJECT,
) -> TnProfile:
    profile = TnProfile(account=account, name=name.strip(), description=description.strip(), block_action=block_action)
    profile.full_clean(validate_constraints=False)
    _check_name_free(account, profile.name)
    _save_profile(profile)
    audit_record(
        account=account, actor=actor, action="tn_profile.created", obj=profile, after=_profile_snapshot(profile)
    )
    return profile


@transaction.atomic
def tn_profile_update(
    *,
    account: Account,
    actor: Actor,
    profile: TnProfile,
    name: str | None = None,
    description: str | None = None,
    block_action: str | None = None,
) -> TnProfile:
    """Change what is given (None leaves a field as it is)."""
    profile = TnProfile.objects.for_account(account).select_for_update().get(pk=profile.pk)
    before = _profile_snapshot(profile)
    if name is not None:
        profile.name = name.strip()
    if description is not None:
        profile.description = description.strip()
    if block_action is not None:
        profile.block_action = block_action
    profile.full_clean(validate_constraints=False)
    if profile.name != before["name"]:
        _check_name_free(account, profile.name, profile)
    after = _profile_snapshot(profile)
    if after != before:
        _save_profile(profile)
        audit_record(account=account, actor=actor, action="tn_profile.updated", obj=profile, before=before, after=after)
    return profile


@transaction.atomic
def tn_profile_delete(*, account: Account, actor: Actor, profile: TnProfile, detach_numbers: bool = False) -> int:
    """Delete a profile and its lists. Returns how many numbers were taken off it.

    A profile that active numbers use is refused unless `detach_numbers` says to take it off them: silently
    unscreening numbers that relied on a blacklist is the kind of change a customer must ask for.
    """
    profile = TnProfile.objects.for_account(account).select_for_update().get(pk=profile.pk)
    users = PhoneNumber.objects.for_account(account).filter(tn_profile=profile, status=PhoneNumber.Status.ACTIVE)
    in_use = list(users.values_list("number", flat=True))
    if in_use and not detach_numbers:
        count = len(in_use)
        raise ProfileInUse(
            f"This profile is used by {count} number{'s' if count != 1 else ''}. Take it off "
            f"{'them' if count != 1 else 'it'} first, or delete with detach_numbers to do that in one step.",
            code="profile_in_use",
        )
    if in_use:
        users.update(tn_profile=None, updated_at=timezone.now())
    audit_record(
        account=account,
        actor=actor,
        action="tn_profile.deleted",
        obj=profile,
        before={
            **_profile_snapshot(profile),
            "blacklist_count": profile.blacklist_count,
            "whitelist_count": profile.whitelist_count,
        },
        after={"numbers_detached": len(in_use), "numbers": in_use[:AUDIT_VALUES_LIMIT]} if in_use else None,
    )
    profile.delete()
    return len(in_use)


# --- Caller list entries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedEntry:
    """A list item after validation: what is stored, and the note to set (None keeps an existing note)."""

    kind: str
    value: str
    note: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.value)

    @property
    def caller_id(self) -> str:
        return f"{self.value}*" if self.kind == CallerListEntry.Kind.PREFIX else self.value


def parse_caller_id(text: str) -> tuple[str, str]:
    """(kind, stored value) of a list entry as customers write it: "+12015550123", "+1900*" or "anonymous".

    Numbers must be written in E.164 form (with "+" and the country code; spaces and dashes are dropped)
    and have a possible length for their country. Validity of the range is not required on purpose:
    unassigned numbers are exactly what robocallers spoof, and a blacklist must be able to name them.
    """
    text = text.strip()
    if text.lower() == "anonymous":
        return CallerListEntry.Kind.ANONYMOUS, "anonymous"
    if text.endswith("*"):
        match = _PREFIX.fullmatch(text)
        if not match:
            raise ValidationError("A prefix is + and 1 to 14 digits, then *, e.g. +1900*.", code="invalid_prefix")
        return CallerListEntry.Kind.PREFIX, f"+{match.group(1)}"
    if not text.startswith("+"):
        raise ValidationError(
            "Write a number in E.164 form, with + and the country code (e.g. +12015550123), a prefix such as "
            "+1900*, or anonymous.",
            code="invalid_caller_id",
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError("Not a phone number in E.164 form.", code="invalid_caller_id") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(
            "Not a possible phone number: check the country code and length.", code="invalid_caller_id"
        )
    return CallerListEntry.Kind.NUMBER, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_entry(item: object, *, allow_note: bool = True) -> ParsedEntry:
    """One list item: a string, or {"caller_id": "...", "note": "..."}."""
    note = None
    if isinstance(item, Mapping):
        unknown = set(item) - ({"caller_id", "note"} if allow_note else {"caller_id"})
        if unknown:
            raise ValidationError(f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}.", code="invalid_item")
        caller_id, note = item.get("caller_id"), item.get("note")
        if note is not None and not isinstance(note, str):
            raise ValidationError("note must be a string.", code="invalid_item")
        if note is not None and len(note.strip()) > NOTE_MAX_LENGTH:
            raise ValidationError(f"note is longer than {NOTE_MAX_LENGTH} characters.", code="note_too_long")
    else:
        caller_id = item
    if not isinstance(caller_id, str) or not caller_id.strip():
        raise ValidationError(
            'Give a caller ID as a string, or {"caller_id": "...", "note": "..."}.', code="invalid_item"
        )
    kind, value = parse_caller_id(caller_id)
    return ParsedEntry(kind, value, note.strip() if note is not None else None)


@dataclass
class CallerListChange:
    """What one change did. `updated` counts existing entries whose note changed."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    added_values: list[str] = field(default_factory=list)
    removed_values: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _check_list_type(list_type: str) -> None:
    if list_type not in CallerListEntry.List.values:
        raise ValidationError({"list_type": ValidationError("Choose blacklist or whitelist.", code="invalid_choice")})


def _chunks(items: Sequence, size: int = _BATCH) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply(
    profile: TnProfile,
    list_type: str,
    adds: dict[tuple[str, str], ParsedEntry],
    removes: dict[tuple[str, str], ParsedEntry],
) -> CallerListChange:
    """Apply validated adds and removes to a profile locked by the caller, in bulk statements."""
    change = CallerListChange()
    entries = CallerListEntry.objects.filter(profile=profile, list_type=list_type)

    existing: dict[tuple[str, str], tuple[int, str]] = {}
    values = sorted({value for _, value in adds})
    for chunk in _chunks(values):
        for pk, kind, value, note in entries.filter(value__in=chunk).values_list("id", "kind", "value", "note"):
            existing[(kind, value)] = (pk, note)

    # Values come out of parse_entry, which is stricter than the model's field validators, and the database
    # enforces the constraints, so rows are not full_clean()ed one by one (10,000 unique-check queries).
    new = [
        CallerListEntry(profile=profile, list_type=list_type, kind=e.kind, value=e.value, note=e.note or "")
        for key, e in adds.items()
        if key not in existing
    ]
    CallerListEntry.objects.bulk_create(new, batch_size=_BATCH)
    renoted = [
        CallerListEntry(pk=existing[key][0], note=e.note)
        for key, e in adds.items()
        if key in existing and e.note is not None and e.note != existing[key][1]
    ]
    CallerListEntry.objects.bulk_update(renoted, ["note"], batch_size=_BATCH)
    change.added, change.updated = len(new), len(renoted)
    change.added_values = [entry.display for entry in new[:AUDIT_VALUES_LIMIT]]

    by_kind: dict[str, list[str]] = {}
    for kind, value in removes:
        by_kind.setdefault(kind, []).append(value)
    removed_keys: list[tuple[str, str]] = []
    for kind, kind_values in by_kind.items():
        for chunk in _chunks(sorted(kind_values)):
            doomed = entries.filter(kind=kind, value__in=chunk)
            removed_keys += [(kind, v) for v in doomed.values_list("value", flat=True)[:AUDIT_VALUES_LIMIT]]
            change.removed += doomed.delete()[0]
    change.removed_values = [removes[key].caller_id for key in removed_keys[:AUDIT_VALUES_LIMIT]]

    if change.changed:
        # Recounted rather than adjusted, so the shown size heals itself if rows ever change behind our back.
        count_field = f"{list_type}_count"
        setattr(profile, count_field, entries.count())
        profile.updated_at = timezone.now()
        profile.save(update_fields=[count_field, "updated_at"])
    return change


def _audit_change(
    account: Account, actor: Actor, profile: TnProfile, list_type: str, change: CallerListChange, **extra
) -> None:
    audit_record(
        account=account,
        actor=actor,
        action=f"tn_profile.{list_type}_changed",
        obj=profile,
        after={
            "added": change.added,
            "updated": change.updated,
            "removed": change.removed,
            "added_values": change.added_values,
            "removed_values": change.removed_values,
            "count": getattr(profile, f"{list_type}_count"),
            **extra,
        },
    )


@transaction.atomic
def caller_list_change(
    *,
    account: Account,
    actor: Actor,
    profile: TnProfile,
    list_type: str,
    add: Sequence[object] = (),
    remove: Sequence[object] = (),
) -> CallerListChange:
    """Add and remove caller IDs on a profile's blacklist or whitelist, all or nothing.

    Items are strings or {"caller_id", "note"} objects. Errors are keyed by position ("add.3", "remove.0").
    Adding an entry that exists is not an error (its note is updated when one is given); removing one that
    does not exist is not an error either. One audit entry records the whole change.
    """
    _check_list_type(list_type)
    if len(add) + len(remove) > MAX_CHANGES_PER_REQUEST:
        raise ValidationError(
            {
                "add": ValidationError(
                    f"At most {MAX_CHANGES_PER_REQUEST:,} items (adds and removes together) per request; "
                    f"this one has {len(add) + len(remove):,}.",
                    code="too_many_items",
                )
            }
        )

    errors: dict[str, ValidationError] = {}
    adds: dict[tuple[str, str], ParsedEntry] = {}
    for index, item in enumerate(add):
        try:
            entry = parse_entry(item)
        except ValidationError as exc:
            errors[f"add.{index}"] = exc
            continue
        previous = adds.get(entry.key)
        # The same entry twice in one request: the last note given wins.
        adds[entry.key] = entry if entry.note is not None or previous is None else previous
    removes: dict[tuple[str, str], ParsedEntry] = {}
    for index, item in enumerate(remove):
        try:
            entry = parse_entry(item, allow_note=False)
        except ValidationError as exc:
            errors[f"remove.{index}"] = exc
            continue
        if entry.key in adds:
            errors[f"remove.{index}"] = ValidationError(
                f"{entry.caller_id} is both added and removed in this request.", code="conflicting_change"
            )
        removes[entry.key] = entry
    if errors:
        raise ValidationError(errors)

    profile = TnProfile.objects.for_account(account).select_for_update().get(pk=profile.pk)
    change = _apply(profile, list_type, adds, removes)
    if change.changed:
        _audit_change(account, actor, profile, list_type, change)
    return change


@dataclass
class CallerListImport:
    """The result of a CSV import: good rows were applied, bad rows are reported by line number."""

    change: CallerListChange
    rows: int
    errors: list[tuple[int, str]]


@transaction.atomic
def caller_list_import_csv(
    *, account: Account, actor: Actor, profile: TnProfile, list_type: str, text: str
) -> CallerListImport:
    """Add the rows of a CSV (columns caller_id,note; a header row is optional) to a list.

    Unlike an API change this is not all-or-nothing: a customer uploading a spreadsheet gets the good rows
    added and a list of the bad ones, by line number, to fix and upload again.
    """
    _check_list_type(list_type)
    errors: list[tuple[int, str]] = []
    adds: dict[tuple[str, str], ParsedEntry] = {}
    rows = 0
    reader = csv.reader(text.splitlines())
    for row in reader:
        cells = [cell.strip() for cell in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if reader.line_num == 1 and cells[0].lower() in ("caller_id", "caller id", "number"):
            continue  # a header row
        rows += 1
        if rows > MAX_IMPORT_ROWS:
            raise ValidationError(
                {
                    "file": ValidationError(
                        f"At most {MAX_IMPORT_ROWS:,} rows per file; split it and import the parts.",
                        code="too_many_rows",
                    )
                }
            )
        if len(cells) > 2:
            errors.append((reader.line_num, "Expected two columns, caller_id and note."))
            continue
        try:
            entry = parse_entry({"caller_id": cells[0], "note": cells[1] if len(cells) > 1 else None})
        except ValidationError as exc:
            errors.append((reader.line_num, f"{cells[0]}: {' '.join(exc.messages)}"))
            continue
        adds[entry.key] = entry

    profile = TnProfile.objects.for_account(account).select_for_update().get(pk=profile.pk)
    change = _apply(profile, list_type, adds, {})
    if change.changed:
        _audit_change(
            account, actor, profile, list_type, change, source="csv_import", rows=rows, rejected_rows=len(errors)
        )
    return CallerListImport(change=change, rows=rows, errors=errors)
