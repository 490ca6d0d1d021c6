"""Writes for phone numbers: stock loading, orders, changes to owned numbers, release, lease expiry.

Selling is guarded twice. An order claims each stock row with a conditional UPDATE
(`status='available'` -> `'assigned'`, one row or none), so of two concurrent buyers the database lets
exactly one through; the partial unique constraint on active leases is the backstop. An account's
quota is counted while its Account row is locked, so two orders of one account cannot both squeeze
under it. Stock is platform data (no account), so stock loading and quarantine returns are logged,
not audited; everything an account does to its numbers is audited.
"""

from __future__ import annotations

import calendar
import csv
import io
import logging
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from telephony.models import (
    CallControlApp,
    NumberOrder,
    NumberOrderItem,
    PhoneNumber,
    SipConnection,
    SipUser,
    StockNumber,
    TnProfile,
)
from telephony.models.numbers import NumberType
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account
from tenants.services import Actor, actor_label, audit_record

logger = logging.getLogger(__name__)

ORDER_MAX_NUMBERS = 100
VOICE_TARGETS = ("call_control_app", "sip_connection", "sip_user")
TAG_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
TAGS_MAX = 20


# --- Small helpers -----------------------------------------------------------------------------------


def normalize_e164(value: str) -> str | None:
    """'+1 (201) 555-0123' -> '+12015550123'; None unless phonenumbers calls it a valid number."""
    if not isinstance(value, str) or not value.strip() or len(value) > 32:
        return None
    text = value.strip()
    if not text.startswith("+"):
        text = f"+{text}"
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, or the month's last day when it is shorter (31 Jan + 1 -> 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_period_end(leased_at: datetime, after: datetime) -> datetime:
    """The first monthly anniversary of the lease later than `after`. Counting from the lease date, not from
    the last period end, keeps a lease taken on the 31st on the 31st (or the month's end) for ever."""
    months = max(1, (after.year - leased_at.year) * 12 + after.month - leased_at.month)
    end = add_months(leased_at, months)
    while end <= after:
        months += 1
        end = add_months(leased_at, months)
    return end


def quota_for(account: Account) -> int:
    return account.number_quota if account.number_quota is not None else settings.NUMBER_QUOTA


def _conflict(fields: Iterable[str]) -> ValidationError:
    names = sorted(fields)
    message = f"A number has one voice target; {' and '.join(names)} cannot both be set. Null the other one."
    return ValidationError({name: ValidationError(message, code="voice_target_conflict") for name in names})


def _check_owned(account: Account, **objects) -> None:
    # Callers resolve ids with get_for_account; this is the belt to that pair of braces.
    for name, obj in objects.items():
        if obj is not None and obj.account_id != account.pk:
            raise ValidationError({name: ValidationError("Not found in this account.", code="does_not_exist")})


# --- Stock loading -----------------------------------------------------------------------------------


@dataclass
class StockImportReport:
    created: int = 0
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (line, number) already in stock
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        return f"{self.created} imported, {len(self.duplicates)} already in stock, {len(self.errors)} rejected"


CSV_COLUMNS = (
    "number",
    "country",
    "type",
    "state",
    "rate_center",
    "city",
    "npa",
    "nxx",
    "features",
    "monthly_price",
    "setup_price",
)


def _price(value: str, column: str) -> Decimal:
    if not value:
        return Decimal(0)
    try:
        price = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{column} {value!r} is not a number") from exc
    if not price.is_finite() or price < 0 or price >= Decimal("1000000") or price.as_tuple().exponent < -4:
        raise ValueError(f"{column} {value!r} must be between 0 and 999999.9999, with at most 4 decimals")
    return price


def stock_from_row(row: dict[str, str]) -> StockNumber:
    """One CSV row as an unsaved StockNumber, with digits, country, type, NPA and NXX derived from the
    number where the columns are empty. Raises ValueError with a message for people."""
    row = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
    raw = row.get("number", "")
    number = normalize_e164(raw)
    if number is None:
        raise ValueError(f"number {raw!r} is not a valid E.164 number")
    parsed = phonenumbers.parse(number, None)
    country = phonenumbers.region_code_for_number(parsed) or ""
    given_country = row.get("country", "").upper()
    if given_country and given_country != country:
        raise ValueError(f"country {given_country!r} does not match the number, which is in {country or 'no country'}")
    kind = row.get("type", "").lower().replace("-", "_")
    if not kind:
        is_toll_free = phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE
        kind = NumberType.TOLL_FREE if is_toll_free else NumberType.LOCAL
    if kind not in NumberType.values:
        raise ValueError(f"type {kind!r} is not one of {', '.join(NumberType.values)}")
    national = str(parsed.national_number)
    nanp = parsed.country_code == 1
    npa = row.get("npa") or (national[:3] if nanp else "")
    nxx = row.get("nxx") or (national[3:6] if nanp else "")
    if nanp and (npa != national[:3] or nxx != national[3:6]):
        raise ValueError(f"npa/nxx {npa}/{nxx} do not match the number")
    features = {f.strip().lower() for f in re.split(r"[;|, ]+", row.get("features", "")) if f.strip()}
    if not features:
        features = {"voice"}
    unknown = features - {"voice", "sms"}
    if unknown:
        raise ValueError(f"features {', '.join(sorted(unknown))} unknown; use voice and sms")
    for column, limit in (("state", 64), ("rate_center", 64), ("city", 64)):
        if len(row.get(column, "")) > limit:
            raise ValueError(f"{column} is longer than {limit} characters")
    return StockNumber(
        number=number,
        digits=number[1:],
        country=country,
        number_type=kind,
        state=row.get("state", "").upper(),
        rate_center=row.get("rate_center", ""),
        city=row.get("city", ""),
        npa=npa,
        nxx=nxx,
        voice="voice" in features,
        sms="sms" in features,
        monthly_price=_price(row.get("monthly_price", ""), "monthly_price"),
        setup_price=_price(row.get("setup_price", ""), "setup_price"),
    )


def _save_batch(batch: list[tuple[int, StockNumber]], report: StockImportReport) -> None:
    with transaction.atomic():
        existing = set(
            StockNumber.objects.filter(number__in=[stock.number for _, stock in batch]).values_list("number", flat=True)
        )
        fresh = []
        for line, stock in batch:
            if stock.number in existing:
                report.duplicates.append((line, stock.number))
            else:
                fresh.append(stock)
        # ignore_conflicts covers a row another import inserted since the lookup above; such a row is counted
        # as created by whichever import got there first, which is close enough for a report.
        StockNumber.objects.bulk_create(fresh, ignore_conflicts=True)
        report.created += len(fresh)


def stock_import_rows(
    *, rows: Iterable[dict[str, str]], first_line: int = 2, batch_size: int = 1000
) -> StockImportReport:
    """Validate every row, report bad ones by line, and insert the good ones one transaction per batch."""
    report = StockImportReport()
    batch: list[tuple[int, StockNumber]] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=first_line):
        try:
            stock = stock_from_row(row)
        except ValueError as exc:
            report.errors.append((line, str(exc)))
            continue
        if stock.number in seen:
            report.duplicates.append((line, stock.number))
            continue
        seen.add(stock.number)
        batch.append((line, stock))
        if len(batch) >= batch_size:
            _save_batch(batch, report)
            batch = []
    if batch:
        _save_batch(batch, report)
    logger.info("stock import: %s", report.summary())
    return report


def stock_import_csv(*, file: Iterable[str] | io.TextIOBase, batch_size: int = 1000) -> StockImportReport:
    """A CSV with a header row (at least `number`; see CSV_COLUMNS) into stock."""
    reader = csv.DictReader(file)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "number" not in header:
        report = StockImportReport()
        report.errors.append((1, f"the header must name a `number` column (columns: {', '.join(CSV_COLUMNS)})"))
        return report
    unknown = set(header) - set(CSV_COLUMNS)
    if unknown:
        report = StockImportReport()
        report.errors.append((1, f"unknown columns {', '.join(sorted(unknown))}; use {', '.join(CSV_COLUMNS)}"))
        return report
    return stock_import_rows(rows=reader, batch_size=batch_size)


# Demo stock: area code -> (state, rate center, city). Each gets the fictional 555-01xx block plus a few
# ordinary-looking exchanges, so a newcomer can search by area code, state, city or pattern straight away.
DEMO_AREAS = {
    "201": ("NJ", "JERSEYCITY", "Jersey City"),
    "212": ("NY", "NWYRCYZN01", "New York"),
    "415": ("CA", "SNFC CNTRL", "San Francisco"),
    "512": ("TX", "AUSTIN", "Austin"),
    "312": ("IL", "CHICAGO", "Chicago"),
}
DEMO_EXCHANGES = ("555", "230", "346", "478", "592", "683")
DEMO_TOLL_FREE = "888"


def _demo_rows() -> Iterator[StockNumber]:
    rng = random.Random(20240601)  # noqa: S311 - a fixed seed: the same numbers every run, so loading is idempotent
    for npa, (state, rate_center, city) in DEMO_AREAS.items():
        for nxx in DEMO_EXCHANGES:
            lines = range(100, 200) if nxx == "555" else sorted(rng.sample(range(1000, 10000), 100))
            for line in lines:
                digits = f"1{npa}{nxx}{line:04d}"
                yield StockNumber(
                    number=f"+{digits}",
                    digits=digits,
                    country="US",
                    number_type=NumberType.LOCAL,
                    state=state,
                    rate_center=rate_center,
                    city=city,
                    npa=npa,
                    nxx=nxx,
                    voice=True,
                    sms=line % 3 != 0,
                    monthly_price=Decimal("1.00"),
                    setup_price=Decimal("0.00"),
                )
    for nxx in ("230", "346", "478", "592", "683"):
        for line in sorted(rng.sample(range(1000, 10000), 100)):
            digits = f"1{DEMO_TOLL_FREE}{nxx}{line:04d}"
            yield StockNumber(
                number=f"+{digits}",
                digits=digits,
                country="US",
                number_type=NumberType.TOLL_FREE,
                npa=DEMO_TOLL_FREE,
                nxx=nxx,
                voice=True,
                sms=line % 2 == 0,
                monthly_price=Decimal("2.00"),
                setup_price=Decimal("1.00"),
            )


@transaction.atomic
def stock_load_demo() -> int:
    """Load the demo stock (about 3,500 numbers); returns how many were new. Safe to run again: numbers
    already present, sold or not, are left as they are."""
    rows = [stock for stock in _demo_rows() if normalize_e164(stock.number) == stock.number]
    before = StockNumber.objects.filter(number__in=[s.number for s in rows]).count()
    StockNumber.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows) - before


@transaction.atomic
def stock_return_quarantined(*, now: datetime | None = None) -> int:
    """Put numbers whose quarantine has ended back on sale (periodic job). Returns how many."""
    now = now or timezone.now()
    count = StockNumber.objects.filter(status=StockNumber.Status.QUARANTINED, quarantined_until__lte=now).update(
        status=StockNumber.Status.AVAILABLE, quarantined_until=None
    )
    if count:
        logger.info("returned %d quarantined numbers to stock", count)
    return count


@transaction.atomic
def stock_return_now(*, stock_ids: Iterable[int], actor: Actor = None) -> int:
    """Staff cut a quarantine short. Only quarantined rows move: an assigned number is never freed here."""
    count = StockNumber.objects.filter(pk__in=list(stock_ids), status=StockNumber.Status.QUARANTINED).update(
        status=StockNumber.Status.AVAILABLE, quarantined_until=None
    )
    logger.info("%s returned %d quarantined numbers to stock early", actor or "system", count)
    return count


# --- Orders ------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    number: str
    result: str
    reason: str = ""
    lease: PhoneNumber | None = None


def _validate_voice_target(**targets) -> None:
    chosen = [name for name, value in targets.items() if value is not None]
    if len(chosen) > 1:
        raise _conflict(chosen)


def _claim(
    *, account: Account, order: NumberOrder, stock: StockNumber, now: datetime, lease_fields: dict[str, Any]
) -> PhoneNumber | None:
    """Take one stock number for the account, or None if someone else has it."""
    claimed = StockNumber.objects.filter(pk=stock.pk, status=StockNumber.Status.AVAILABLE).update(
        status=StockNumber.Status.ASSIGNED, quarantined_until=None
    )
    if claimed != 1:
        return None
    lease = PhoneNumber(
        account=account,
        stock=stock,
        number=stock.number,
        order=order,
        leased_at=now,
        expires_at=add_months(now, 1),
        **lease_fields,
    )
    lease.full_clean(validate_constraints=False)
    try:
        # The savepoint keeps the order's transaction usable if the constraint, the backstop, fires.
        with transaction.atomic():
            lease.save()
    except IntegrityError:
        return None
    return lease


@transaction.atomic
def number_order_create(
    *,
    account: Account,
    actor: Actor,
    numbers: list[str],
    voice: bool = True,
    sms: bool = False,
    autorenew: bool = True,
    tn_profile: TnProfile | None = None,
    call_control_app: CallControlApp | None = None,
    sip_connection: SipConnection | None = None,
    sip_user: SipUser | None = None,
) -> NumberOrder:
    """Buy numbers from stock. Each number succeeds or fails on its own (taken, not_found, quota, invalid,
    feature_unavailable); the order is completed, partial or failed accordingly."""
    if not numbers:
        raise ValidationError({"numbers": ValidationError("Name at least one number.", code="required")})
    if len(numbers) > ORDER_MAX_NUMBERS:
        raise ValidationError({"numbers": f"Order at most {ORDER_MAX_NUMBERS} numbers at a time."})
    _validate_voice_target(call_control_app=call_control_app, sip_connection=sip_connection, sip_user=sip_user)
    _check_owned(
        account,
        tn_profile=tn_profile,
        call_control_app=call_control_app,
        sip_connection=sip_connection,
        sip_user=sip_user,
    )

    # The account row lock serialises this account's orders: the active count below stays true until commit.
    locked = Account.objects.select_for_update().get(pk=account.pk)
    room = quota_for(locked) - PhoneNumber.objects.for_account(account).filter(status=PhoneNumber.Status.ACTIVE).count()

    now = timezone.now()
    order = NumberOrder(
        account=account,
        status=NumberOrder.Status.FAILED,
        voice=voice,
        sms=sms,
        autorenew=autorenew,
        actor_label=actor_label(actor),
    )
    order.full_clean()
    order.save()

    # One outcome per distinct number, in the order asked; a repeated number is answered once.
    asked: dict[str, _Outcome] = {}
    normalized: dict[str, str] = {}
    for raw in numbers:
        e164 = normalize_e164(raw)
        key = e164 or str(raw)
        if key in asked:
            continue
        asked[key] = _Outcome(number=key, result=NumberOrderItem.Result.FAILED, reason=NumberOrderItem.Reason.INVALID)
        if e164:
            normalized[e164] = key
    stock_by_number = {s.number: s for s in StockNumber.objects.filter(number__in=list(normalized))}
    lease_fields = {
        "voice_enabled": voice,
        "sms_enabled": sms,
        "autorenew": autorenew,
        "tn_profile": tn_profile,
        "call_control_app": call_control_app,
        "sip_connection": sip_connection,
        "sip_user": sip_user,
    }

    # Claims go in number order so two orders over the same numbers lock rows in the same order (no deadlock).
    for e164 in sorted(normalized):
        outcome = asked[normalized[e164]]
        stock = stock_by_number.get(e164)
        if stock is None:
            outcome.reason = NumberOrderItem.Reason.NOT_FOUND
        elif stock.status != StockNumber.Status.AVAILABLE:
            outcome.reason = NumberOrderItem.Reason.TAKEN
        elif (sms and not stock.sms) or (voice and not stock.voice):
            outcome.reason = NumberOrderItem.Reason.FEATURE_UNAVAILABLE
        elif room <= 0:
            outcome.reason = NumberOrderItem.Reason.QUOTA
        else:
            lease = _claim(account=account, order=order, stock=stock, now=now, lease_fields=lease_fields)
            if lease is None:
                outcome.reason = NumberOrderItem.Reason.TAKEN
            else:
                outcome.result, outcome.reason, outcome.lease = NumberOrderItem.Result.SUCCESS, "", lease
                room -= 1

    outcomes = list(asked.values())
    NumberOrderItem.objects.bulk_create(
        [
            NumberOrderItem(order=order, number=o.number[:32], result=o.result, reason=o.reason, phone_number=o.lease)
            for o in outcomes
        ]
    )
    succeeded = sum(o.result == NumberOrderItem.Result.SUCCESS for o in outcomes)
    if succeeded == len(outcomes):
        order.status = NumberOrder.Status.COMPLETED
    elif succeeded:
        order.status = NumberOrder.Status.PARTIAL
    order.save(update_fields=["status"])

    audit_record(
        account=account,
        actor=actor,
        action="number_order.created",
        obj=order,
        after={
            "status": order.status,
            "voice": voice,
            "sms": sms,
            "autorenew": autorenew,
            "items": [{"number": o.number, "result": o.result, "reason": o.reason} for o in outcomes],
        },
    )
    for outcome in outcomes:
        if outcome.lease is not None:
            audit_record(
                account=account,
                actor=actor,
                action="number.ordered",
                obj=outcome.lease,
                after={**_snapshot(outcome.lease), "order": str(order.public_id)},
            )
    return order


# --- Owned numbers -----------------------------------------------------------------------------------

SNAPSHOT_FIELDS = (
    "description",
    "tags",
    "voice_enabled",
    "sms_enabled",
    "autorenew",
    "tn_profile",
    *VOICE_TARGETS,
    "status_callback_url",
    "status_callback_method",
)


def _snapshot(number: PhoneNumber, fields: Iterable[str] = SNAPSHOT_FIELDS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        if name == "tn_profile" or name in VOICE_TARGETS:
            related = getattr(number, name)
            out[name] = str(related.public_id) if related is not None else None
        else:
            value = getattr(number, name)
            out[name] = list(value) if isinstance(value, list) else value
    return out


def clean_tags(tags: Any) -> list[str]:
    """At most 20 labels of 1-32 letters, digits, _ or -; repeats dropped, order kept."""
    if not isinstance(tags, list):
        raise ValidationError({"tags": ValidationError("Send a list of strings.", code="invalid")})
    if len(tags) > TAGS_MAX:
        raise ValidationError({"tags": ValidationError(f"At most {TAGS_MAX} tags.", code="too_many_tags")})
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not TAG_RE.match(tag):
            raise ValidationError(
                {"tags": ValidationError(f"{tag!r}: 1-32 letters, digits, _ or -.", code="invalid_tag")}
            )
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


UPDATABLE = frozenset(SNAPSHOT_FIELDS)


@transaction.atomic
def number_update(*, account: Account, actor: Actor, number: PhoneNumber, changes: dict[str, Any]) -> PhoneNumber:
    """Change an owned number. `changes` holds only the fields to change (PATCH semantics).

    Voice target: at most one of call_control_app, sip_connection, sip_user. Setting one while another is
    set is a `voice_target_conflict` unless the same request nulls the other: a silent replacement could
    send calls somewhere new by accident.
    """
    changes = dict(changes)
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed."))
    number = PhoneNumber.objects.for_account(account).select_for_update().select_related("stock").get(pk=number.pk)
    if number.status != PhoneNumber.Status.ACTIVE:
        raise ValidationError("This number was released; it can no longer be changed.", code="number_released")
    _check_owned(account, **{name: changes.get(name) for name in ("tn_profile", *VOICE_TARGETS)})

    targets = {name: changes[name] for name in VOICE_TARGETS if name in changes}
    setting = [name for name, value in targets.items() if value is not None]
    if len(setting) > 1:
        raise _conflict(setting)
    if setting:
        still_set = [n for n in VOICE_TARGETS if n not in targets and getattr(number, f"{n}_id") is not None]
        if still_set:
            raise _conflict([setting[0], *still_set])

    errors: dict[str, ValidationError] = {}
    if changes.get("sms_enabled") and not number.stock.sms:
        errors["sms_enabled"] = ValidationError("This number cannot send or receive SMS.", code="feature_unavailable")
    if changes.get("voice_enabled") and not number.stock.voice:
        errors["voice_enabled"] = ValidationError("This number does not support voice.", code="feature_unavailable")
    if "tags" in changes:
        try:
            changes["tags"] = clean_tags(changes["tags"])
        except ValidationError as exc:
            errors.update(exc.error_dict)
    if changes.get("status_callback_url"):
        try:
            changes["status_callback_url"] = validate_customer_url(changes["status_callback_url"])
        except ValidationError as exc:
            errors["status_callback_url"] = exc
    if errors:
        raise ValidationError(errors)

    changed = [name for name, value in changes.items() if _snapshot(number, [name])[name] != _plain(value)]
    if not changed:
        return number
    before = _snapshot(number, changed)
    for name in changed:
        setattr(number, name, changes[name])
    number.full_clean(exclude=["stock", "order"])
    number.save(update_fields=[*changed, "updated_at"])
    audit_record(
        account=account,
        actor=actor,
        action="number.updated",
        obj=number,
        before=before,
        after=_snapshot(number, changed),
    )
    return number


def _plain(value: Any) -> Any:
    if hasattr(value, "public_id"):
        return str(value.public_id)
    return list(value) if isinstance(value, list) else value


@transaction.atomic
def number_release(*, account: Account, actor: Actor, number: PhoneNumber, reason: str = "") -> PhoneNumber:
    """End the lease. The stock number rests in quarantine (NUMBER_QUARANTINE_DAYS) before it is sold again,
    so calls meant for the old owner do not reach the next one. Releasing twice is a no-op."""
    number = PhoneNumber.objects.for_account(account).select_for_update().get(pk=number.pk)
    if number.status != PhoneNumber.Status.ACTIVE:
        return number
    now = timezone.now()
    number.status = PhoneNumber.Status.RELEASED
    number.released_at = now
    number.save(update_fields=["status", "released_at", "updated_at"])
    days = settings.NUMBER_QUARANTINE_DAYS
    if days > 0:
        StockNumber.objects.filter(pk=number.stock_id).update(
            status=StockNumber.Status.QUARANTINED, quarantined_until=now + timedelta(days=days)
        )
    else:
        StockNumber.objects.filter(pk=number.stock_id).update(
            status=StockNumber.Status.AVAILABLE, quarantined_until=None
        )
    after = {"status": number.status, "released_at": now.isoformat()}
    if reason:
        after["reason"] = reason
    # A released number must not go on being shown as someone's caller ID: the next owner would get the
    # callbacks. Trunks that always used it fall back to passing the caller's number through.
    cleared_users = SipUser.objects.for_account(account).filter(caller_id_number=number).update(caller_id_number=None)
    cleared_connections = (
        SipConnection.objects.for_account(account)
        .filter(default_caller_id=number)
        .update(default_caller_id=None, caller_id_policy=SipConnection.CallerIdPolicy.PASSTHROUGH)
    )
    if cleared_users or cleared_connections:
        after["caller_id_cleared"] = {"sip_users": cleared_users, "sip_connections": cleared_connections}
    audit_record(
        account=account, actor=actor, action="number.released", obj=number, before={"status": "active"}, after=after
    )
    return number


# --- Lease expiry (periodic) -------------------------------------------------------------------------


@transaction.atomic
def _expire_one(pk: int, now: datetime) -> str | None:
    # Re-read under a lock: the owner may have switched autorenew or released the number since the scan.
    number = (
        PhoneNumber.objects.select_for_update()
        .select_related("account")
        .filter(pk=pk, status=PhoneNumber.Status.ACTIVE, expires_at__lte=now)
        .first()
    )
    if number is None:
        return None
    if number.autorenew:
        before = {"expires_at": number.expires_at.isoformat()}
        number.expires_at = next_period_end(number.leased_at, after=max(number.expires_at, now))
        number.save(update_fields=["expires_at", "updated_at"])
        audit_record(
            account=number.account,
            actor=None,
            action="number.renewed",
            obj=number,
            before=before,
            after={"expires_at": number.expires_at.isoformat()},
        )
        return "renewed"
    number_release(account=number.account, actor=None, number=number, reason="expired")
    return "released"


def number_leases_process_expired(*, now: datetime | None = None, batch_size: int = 500) -> dict[str, int]:
    """Renew due leases with autorenew on, release those with it off (periodic job). One transaction per
    number, so one failure does not hold back the rest and locks are short."""
    now = now or timezone.now()
    counts = {"renewed": 0, "released": 0}
    due = PhoneNumber.objects.filter(status=PhoneNumber.Status.ACTIVE, expires_at__lte=now)
    last_pk = 0
    while True:
        pks = list(due.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            break
        for pk in pks:
            outcome = _expire_one(pk, now)
            if outcome:
                counts[outcome] += 1
        last_pk = pks[-1]
    if counts["renewed"] or counts["released"]:
        logger.info("lease expiry: %(renewed)d renewed, %(released)d released", counts)
    return counts
