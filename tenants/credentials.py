"""Making and checking secrets: API keys (stored as prefix + SHA-256 digest) and signed login tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.crypto import salted_hmac

from tenants.models import MANAGE_ROLES, WRITE_ROLES, Account, ApiKey, Membership, User

# Characters of the random part kept in clear as the lookup prefix: enough to be unique and indexable,
# too few to help guess the rest (the remaining 34 base62 characters carry ~200 bits).
LOOKUP_CHARS = 12
TOKEN_SALT = "tenants.auth-token"  # noqa: S105 - a signing namespace, not a secret


def new_api_key_secret() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return settings.API_KEY_PREFIX + "".join(secrets.choice(alphabet) for _ in range(46))


def api_key_prefix(secret: str) -> str:
    return secret[: len(settings.API_KEY_PREFIX) + LOOKUP_CHARS]


def api_key_digest(secret: str) -> str:
    # The secret has ~270 bits of entropy, so a fast hash is as safe here as a slow one and keeps
    # authentication cheap on every request.
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(settings.API_KEY_PREFIX)


def find_api_key(secret: str) -> ApiKey | None:
    """The key this secret belongs to, whatever its state (revoked and expired keys are the caller's call)."""
    if not looks_like_api_key(secret) or len(secret) > 128:
        return None
    key = ApiKey.objects.select_related("account").filter(prefix=api_key_prefix(secret)).first()
    if key is None or not hmac.compare_digest(key.digest, api_key_digest(secret)):
        return None
    return key


@dataclass(frozen=True)
class AccountCredential:
    """What one request may act as: an account, a role in it, and the user or API key acting."""

    account: Account
    role: str
    user: User | None = None
    api_key: ApiKey | None = None

    @property
    def actor(self) -> User | ApiKey | None:
        return self.user or self.api_key

    @property
    def can_write(self) -> bool:
        if self.api_key is not None and self.api_key.read_only:
            return False
        return self.role in WRITE_ROLES

    @property
    def can_manage(self) -> bool:
        """Manage people and API keys: a person with an owner/admin seat, never a key."""
        return self.api_key is None and self.role in MANAGE_ROLES


@dataclass(frozen=True)
class TokenClaims:
    user: User
    account: Account
    membership: Membership


def _password_fingerprint(user: User) -> str:
    # Tying the token to the password hash means a password change signs every token of the user out.
    return salted_hmac(TOKEN_SALT, user.password).hexdigest()[:16]


def issue_auth_token(user: User, account: Account) -> tuple[str, timezone.datetime]:
    payload = {"u": str(user.public_id), "a": str(account.public_id), "p": _password_fingerprint(user)}
    token = signing.dumps(payload, salt=TOKEN_SALT, compress=True)
    return token, timezone.now() + settings.AUTH_TOKEN_TTL


def read_auth_token(token: str) -> TokenClaims | None:
    if len(token) > 1024:
        return None
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=settings.AUTH_TOKEN_TTL)
    except signing.BadSignature:  # also covers SignatureExpired
        return None
    membership = (
        Membership.objects.select_related("user", "account")
        .filter(user__public_id=payload.get("u"), account__public_id=payload.get("a"), user__is_active=True)
        .first()
    )
    if membership is None or not hmac.compare_digest(payload.get("p", ""), _password_fingerprint(membership.user)):
        return None
    return TokenClaims(user=membership.user, account=membership.account, membership=membership)
