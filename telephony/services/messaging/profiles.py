"""Writes for messaging configuration: profiles, SMS enablement of numbers, 10DLC brands and campaigns."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from telephony.models import Brand, Campaign, MessagingNumber, MessagingProfile, PhoneNumber
from telephony.models.numbers import NumberType
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account
from tenants.services import Actor, actor_label, audit_record

PROFILE_FIELDS = (
    "name", "description", "callback_url", "callback_url2", "number_pool_enabled", "sticky_sender",
    "long_code_weight", "toll_free_weight", "skip_unhealthy",
)  # fmt: skip
BRAND_FIELDS = ("display_name", "company_name", "entity_type", "ein", "website", "vertical", "email", "country")
CAMPAIGN_FIELDS = (
    "name", "use_case", "description", "sample_messages", "message_flow", "opt_in_message", "opt_out_message",
    "help_message",
)  # fmt: skip


def _snapshot(obj, fields) -> dict:
    return {name: getattr(obj, name) for name in fields}


def _clean_urls(values: dict) -> None:
    for name in ("callback_url", "callback_url2"):
        value = (values.get(name) or "").strip()
        if value:
            try:
                values[name] = validate_customer_url(value)
            except ValidationError as exc:
                raise ValidationError({name: exc.messages}, code=getattr(exc, "code", None)) from exc
        elif name in values:
            values[name] = ""


def _save_unique_name(profile: MessagingProfile) -> None:
    try:
        with transaction.atomic():
            profile.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"name": ValidationError("This account already has a messaging profile with this name.", code="duplicate")}
        ) from exc


# --- Profiles ----------------------------------------------------------------------------------------


@transaction.atomic
def messaging_profile_create(*, account: Account, actor: Actor, name: str, **values) -> MessagingProfile:
    values = {key: value for key, value in values.items() if key in PROFILE_FIELDS}
    _clean_urls(values)
    profile = MessagingProfile(account=account, name=name.strip(), **values)
    profile.full_clean(validate_constraints=False, validate_unique=False)
    _save_unique_name(profile)
    audit_record(
        account=account,
        actor=actor,
        action="messaging_profile.created",
        obj=profile,
        after=_snapshot(profile, PROFILE_FIELDS),
    )
    return profile


@transaction.atomic
def messaging_profile_update(
    *, account: Account, actor: Actor, profile: MessagingProfile, **values
) -> MessagingProfile:
    """Change what is given; fields not named stay as they are."""
    profile = MessagingProfile.objects.for_account(account).select_for_update().get(pk=profile.pk)
    before = _snapshot(profile, PROFILE_FIELDS)
    values = {key: value for key, value in values.items() if key in PROFILE_FIELDS and value is not None}
    _clean_urls(values)
    if "name" in values:
        values["name"] = values["name"].strip()
    for key, value in values.items():
        setattr(profile, key, value)
    profile.full_clean(validate_constraints=False, validate_unique=False)
    after = _snapshot(profile, PROFILE_FIELDS)
    if after != before:
        _save_unique_name(profile)
        changed = [key for key in PROFILE_FIELDS if before[key] != after[key]]
        audit_record(
            account=account,
            actor=actor,
            action="messaging_profile.updated",
            obj=profile,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
    return profile


@transaction.atomic
def messaging_profile_delete(*, account: Account, actor: Actor, profile: MessagingProfile) -> None:
    """Delete a profile that no number uses (SMS must be turned off on them first: sending would stop)."""
    profile = MessagingProfile.objects.for_account(account).select_for_update().get(pk=profile.pk)
    # A released number is no longer the account's, so SMS cannot be turned off on it any more: its leftover row
    # must not keep the profile in use for good (it goes with the profile).
    count = profile.numbers.filter(phone_number__status=PhoneNumber.Status.ACTIVE).count()
    if count:
        raise ValidationError(
            f"{count} number{'s' if count != 1 else ''} send{'' if count != 1 else 's'} with this profile. Turn SMS "
            f"off on {'them' if count != 1 else 'it'} (or move {'them' if count != 1 else 'it'} to another profile) "
            "first.",
            code="profile_in_use",
        )
    audit_record(
        account=account,
        actor=actor,
        action="messaging_profile.deleted",
        obj=profile,
        before=_snapshot(profile, PROFILE_FIELDS),
    )
    profile.numbers.all().delete()
    profile.delete()


# --- SMS on numbers ----------------------------------------------------------------------------------


def number_needs_campaign(number: PhoneNumber) -> bool:
    """US long codes send only under an approved 10DLC campaign; toll-free and other countries do not need one."""
    stock = number.stock
    return stock.country == "US" and stock.number_type == NumberType.LOCAL


@transaction.atomic
def number_sms_enable(
    *,
    account: Account,
    actor: Actor,
    number: PhoneNumber,
    profile: MessagingProfile,
    campaign: Campaign | None = None,
) -> MessagingNumber:
    """Put a number in a messaging profile (and a campaign): it can then send and receive SMS. Also moves it."""
    number = (
        PhoneNumber.objects.for_account(account)
        .select_for_update(of=("self",))
        .select_related("stock")
        .get(pk=number.pk)
    )
    if number.status != PhoneNumber.Status.ACTIVE:
        raise ValidationError("This number is no longer the account's.", code="number_released")
    if not number.stock.sms:
        raise ValidationError(
            {"number": ValidationError(f"{number.number} does not support SMS (a voice-only number).", "no_sms")}
        )
    if profile.account_id != account.pk or (campaign is not None and campaign.account_id != account.pk):
        raise ValidationError("No such profile or campaign in this account.", code="not_found")
    if campaign is not None and not number_needs_campaign(number):
        campaign = None  # only 10DLC long codes use one; keeping it would suggest otherwise
    profile = _lock_for_use(MessagingProfile, account, profile, "messaging_profile")
    if campaign is not None:
        campaign = _lock_for_use(Campaign, account, campaign, "campaign")
    existing = MessagingNumber.objects.filter(phone_number=number).first()
    before = (
        {"messaging_profile": str(existing.profile.public_id), "campaign": _public(existing.campaign)}
        if existing
        else None
    )
    enabled = existing or MessagingNumber(account=account, phone_number=number, number=number.number)
    enabled.profile = profile
    enabled.campaign = campaign
    enabled.toll_free = number.stock.number_type == NumberType.TOLL_FREE
    enabled.save()
    if not number.sms_enabled:
        number.sms_enabled = True
        number.save(update_fields=["sms_enabled", "updated_at"])
    after = {"messaging_profile": str(profile.public_id), "campaign": _public(campaign)}
    if before != after:
        audit_record(account=account, actor=actor, action="number.sms_enabled", obj=number, before=before, after=after)
    return enabled


def _lock_for_use(model, account: Account, obj, field: str):
    """`obj` again, locked until commit, before a new row points at it; gone meanwhile is `field` not found.

    Its delete locks it too and then counts what uses it: one of the two waits for the other, so the delete sees
    the new row (and is refused) or this finds nothing, rather than the foreign key failing at commit (a 500).
    No-key lock: sends, which only reference it, are not held up.
    """
    locked = model.objects.for_account(account).select_for_update(no_key=True).filter(pk=obj.pk).first()
    if locked is None:
        raise ValidationError({field: ValidationError("No such object in this account.", "does_not_exist")})
    return locked


def _public(obj) -> str | None:
    return str(obj.public_id) if obj is not None else None


@transaction.atomic
def number_sms_disable(*, account: Account, actor: Actor, number: PhoneNumber) -> bool:
    """Take a number out of its messaging profile: it stops sending and receiving SMS. False if it was not in one."""
    number = PhoneNumber.objects.for_account(account).select_for_update().get(pk=number.pk)
    existing = MessagingNumber.objects.filter(phone_number=number).select_related("profile").first()
    if existing is None:
        return False
    before = {"messaging_profile": str(existing.profile.public_id), "campaign": _public(existing.campaign)}
    existing.delete()
    number.sms_enabled = False
    number.save(update_fields=["sms_enabled", "updated_at"])
    audit_record(account=account, actor=actor, action="number.sms_disabled", obj=number, before=before, after=None)
    return True


# --- 10DLC -------------------------------------------------------------------------------------------


@transaction.atomic
def brand_create(*, account: Account, actor: Actor, **values) -> Brand:
    brand = Brand(account=account, **{key: value for key, value in values.items() if key in BRAND_FIELDS})
    brand.full_clean(validate_constraints=False)
    brand.save()
    audit_record(account=account, actor=actor, action="brand.created", obj=brand, after=_snapshot(brand, BRAND_FIELDS))
    return brand


def _clean_samples(samples) -> list[str]:
    samples = [str(sample).strip() for sample in (samples or []) if str(sample).strip()]
    if not 1 <= len(samples) <= 5:
        raise ValidationError({"sample_messages": ValidationError("Give one to five sample messages.", "invalid")})
    return samples


@transaction.atomic
def campaign_create(*, account: Account, actor: Actor, brand: Brand, **values) -> Campaign:
    if brand.account_id != account.pk:
        raise ValidationError({"brand": ValidationError("No such brand in this account.", "not_found")})
    brand = _lock_for_use(Brand, account, brand, "brand")
    if brand.status == Brand.Status.REJECTED:
        raise ValidationError(
            {"brand": ValidationError("This brand was rejected; campaigns need another.", "rejected")}
        )
    values = {key: value for key, value in values.items() if key in CAMPAIGN_FIELDS}
    values["sample_messages"] = _clean_samples(values.get("sample_messages"))
    campaign = Campaign(account=account, brand=brand, **values)
    campaign.full_clean(validate_constraints=False)
    campaign.save()
    audit_record(
        account=account,
        actor=actor,
        action="campaign.created",
        obj=campaign,
        after=_snapshot(campaign, CAMPAIGN_FIELDS),
    )
    return campaign


@transaction.atomic
def campaign_update(*, account: Account, actor: Actor, campaign: Campaign, **values) -> Campaign:
    """Change a campaign; a changed campaign goes back to review (an approved one keeps sending meanwhile? no:
    carriers re-vet the whole campaign, so it is pending again and US long codes under it wait)."""
    campaign = Campaign.objects.for_account(account).select_for_update().get(pk=campaign.pk)
    before = _snapshot(campaign, CAMPAIGN_FIELDS)
    values = {key: value for key, value in values.items() if key in CAMPAIGN_FIELDS and value is not None}
    if "sample_messages" in values:
        values["sample_messages"] = _clean_samples(values["sample_messages"])
    for key, value in values.items():
        setattr(campaign, key, value)
    campaign.full_clean(validate_constraints=False)
    after = _snapshot(campaign, CAMPAIGN_FIELDS)
    if after != before:
        # Only what people read in a reply may change without a new review: the help, opt-in and opt-out texts.
        reviewed = [key for key in CAMPAIGN_FIELDS if before[key] != after[key] and not key.endswith("_message")]
        if reviewed:
            campaign.status = Campaign.Status.PENDING
        campaign.save()
        audit_record(account=account, actor=actor, action="campaign.updated", obj=campaign, before=before, after=after)
    return campaign


@transaction.atomic
def brand_delete(*, account: Account, actor: Actor, brand: Brand) -> None:
    """Delete a brand that has no campaigns left (delete those first: numbers may send under them)."""
    brand = Brand.objects.for_account(account).select_for_update().get(pk=brand.pk)
    count = brand.campaigns.count()
    if count:
        raise ValidationError(
            f"This brand still has {count} campaign{'s' if count != 1 else ''}: delete "
            f"{'them' if count != 1 else 'it'} first.",
            code="brand_in_use",
        )
    audit_record(account=account, actor=actor, action="brand.deleted", obj=brand, before=_snapshot(brand, BRAND_FIELDS))
    brand.delete()


@transaction.atomic
def campaign_delete(*, account: Account, actor: Actor, campaign: Campaign) -> None:
    """Delete a campaign no number is in (move them or turn SMS off first: their sending would stop)."""
    campaign = Campaign.objects.for_account(account).select_for_update().get(pk=campaign.pk)
    # Like a profile: a released number's leftover row does not hold the campaign (it is unlinked below).
    count = campaign.numbers.filter(phone_number__status=PhoneNumber.Status.ACTIVE).count()
    if count:
        raise ValidationError(
            f"{count} number{'s' if count != 1 else ''} send{'' if count != 1 else 's'} under this campaign. Move "
            f"{'them' if count != 1 else 'it'} to another campaign (or turn SMS off) first.",
            code="campaign_in_use",
        )
    audit_record(
        account=account,
        actor=actor,
        action="campaign.deleted",
        obj=campaign,
        before=_snapshot(campaign, CAMPAIGN_FIELDS),
    )
    campaign.delete()  # leftover numbers and old messages keep their rows, with no campaign (SET_NULL)


@transaction.atomic
def tendlc_review(*, staff, obj: Brand | Campaign, approve: bool, note: str = "") -> Brand | Campaign:
    """Staff's decision on a brand or a campaign; the account sees the status (and the note) and gets an event."""
    model = type(obj)
    obj = model.objects.select_for_update().get(pk=obj.pk)
    before = {"status": obj.status}
    obj.status = model.Status.APPROVED if approve else model.Status.REJECTED
    obj.review_note = "" if approve else note.strip()[:500]
    obj.reviewed_at = timezone.now()
    obj.reviewed_by = actor_label(staff) if staff is not None else "staff"
    obj.save()
    prefix = "brand" if model is Brand else "campaign"
    audit_record(
        account=obj.account,
        actor=None,
        action=f"{prefix}.{obj.status}",
        obj=obj,
        before=before,
        after={"status": obj.status, "review_note": obj.review_note, "reviewed_by": obj.reviewed_by},
    )
    return obj
