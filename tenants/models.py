"""People, the accounts (tenants) they act for, and the credentials they act with."""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in: a customer's staff member, or the platform's own staff."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the staff admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="tenants_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email


class Account(models.Model):
    """A customer business: the tenant that owns numbers, SIP resources, calls and messages."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True, help_text="Appears in portal URLs: /a/<slug>/.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    suspended_reason = models.CharField(max_length=300, blank=True)
    number_quota = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most numbers the account may hold; empty = the platform's NUMBER_QUOTA."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "suspended"]), name="tenants_account_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class AccountOwnedQuerySet(models.QuerySet):
    def for_account(self, account: Account) -> AccountOwnedQuerySet:
        return self.filter(account=account)


class AccountOwnedModel(models.Model):
    """Base of every tenant-owned row: it belongs to exactly one account and is only reached through it."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")

    objects = AccountOwnedQuerySet.as_manager()

    class Meta:
        abstract = True


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    VIEWER = "viewer", "Viewer"


# Roles that may change the account's configuration, and the smaller set that may manage people and keys.
WRITE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.DEVELOPER})
MANAGE_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Membership(AccountOwnedModel):
    """A user's seat in an account, with the role that bounds what they may do there."""

    Role = Role

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="tenants_membership_one_per_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=["owner", "admin", "developer", "viewer"]),
                name="tenants_membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class ApiKey(AccountOwnedModel):
    """A secret an integrator's server uses to call the API for one account. Only its digest is stored."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    # The first characters of the secret, stored in clear so a key can be found by index and recognised
    # in a list; the rest is only known as a SHA-256 digest.
    prefix = models.CharField(max_length=32, unique=True)
    digest = models.CharField(max_length=64)
    read_only = models.BooleanField(default=False)
    rate_limit = models.CharField(
        max_length=20, blank=True, help_text="Overrides the platform rate limit for this key, e.g. 20/s or 1000/m."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    # DRF treats whatever authentication returns as request.user; a key is an authenticated principal.
    is_authenticated = True
    is_anonymous = False

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class IdempotencyKey(AccountOwnedModel):
    """The remembered answer to a POST sent with an Idempotency-Key, so a retried request is not done twice."""

    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="tenants_idempotencykey_unique")]

    def __str__(self) -> str:
        return self.key


class AuditEntry(AccountOwnedModel):
    """One configuration change in an account: who did what to which object, with its before and after."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200, help_text="Who acted, kept after the user or key is gone.")
    action = models.CharField(max_length=64, help_text="<object>.<verb>, e.g. api_key.created.")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["account", "-created_at"], name="tenants_audit_account_recent")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_repr} by {self.actor_label}"
