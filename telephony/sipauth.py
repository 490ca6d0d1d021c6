"""SIP digest credentials: the hashes a registrar checks, and the rules a SIP login and password must follow.

The SIP edge (Kamailio's auth_db with `calculate_ha1=0`) reads `username, domain, ha1, ha1b` from a view over
the sip tables and never sees a password, so these two hashes are all we keep:

    HA1  = md5("<username>:<realm>:<password>")           clients that send the bare username
    HA1B = md5("<username>@<realm>:<realm>:<password>")   clients that send username@domain as the username

The realm is the domain the login lives in: the SIP domain's full name for SIP users, and
settings.PLATFORM_SIP_DOMAIN for credential-authenticated connections. MD5 is what RFC 2617/8760 digest
authentication uses with nearly every SIP device in the field; it is not our choice, which is why the
password rules below are strict.
"""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.core.exceptions import ValidationError

# SIP logins end up in SIP URIs and in the registrar's lookups: keep them to characters that need no
# escaping anywhere (RFC 3261 "unreserved" minus the marks that confuse people).
LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
CONNECTION_USERNAME_MIN_LENGTH = 3
USER_LOGIN_MIN_LENGTH = 2
LOGIN_MAX_LENGTH = 64

# SIP registrars are brute-forced around the clock by scanners (sipvicious, friendly-scanner) that try
# extension-like usernames with short and numeric passwords, and an account that falls is used for toll
# fraud within minutes. Hence: long, not just digits, and not derived from the username.
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_ha1(username: str, realm: str, password: str) -> str:
    return _md5(f"{username}:{realm}:{password}")


def digest_ha1b(username: str, realm: str, password: str) -> str:
    return _md5(f"{username}@{realm}:{realm}:{password}")


def digest_hashes(username: str, realm: str, password: str) -> tuple[str, str]:
    """(HA1, HA1B) for one login in one realm."""
    return digest_ha1(username, realm, password), digest_ha1b(username, realm, password)


def connection_realm() -> str:
    """The realm (and registrar domain) of credential-authenticated SIP connections."""
    return settings.PLATFORM_SIP_DOMAIN


def validate_login(value: str, *, field: str, min_length: int) -> str:
    """A SIP username or login: `min_length`-64 characters of A-Z a-z 0-9 . _ -. Returns it unchanged."""
    if not isinstance(value, str) or not value:
        raise ValidationError({field: ValidationError("This field is required.", code="required")})
    if not min_length <= len(value) <= LOGIN_MAX_LENGTH:
        raise ValidationError(
            {
                field: ValidationError(
                    f"Use {min_length} to {LOGIN_MAX_LENGTH} characters.", code=f"{field}_invalid_length"
                )
            }
        )
    if not LOGIN_PATTERN.match(value):
        raise ValidationError(
            {
                field: ValidationError(
                    "Use only letters, digits, dots, underscores and hyphens.", code=f"{field}_invalid_characters"
                )
            }
        )
    return value


def validate_password(password: str, *, login: str, field: str = "password") -> str:
    """The SIP password rules; the error names `field` with a machine code saying which rule failed."""

    def refuse(message: str, code: str):
        raise ValidationError({field: ValidationError(message, code=code)})

    if not isinstance(password, str) or not password:
        refuse("This field is required.", "required")
    if len(password) < PASSWORD_MIN_LENGTH:
        refuse(f"Use at least {PASSWORD_MIN_LENGTH} characters.", "password_too_short")
    if len(password) > PASSWORD_MAX_LENGTH:
        refuse(f"Use at most {PASSWORD_MAX_LENGTH} characters.", "password_too_long")
    if password.isdigit():
        refuse("Use letters or symbols too, not only digits.", "password_all_digits")
    if any(ord(char) < 32 or ord(char) == 127 for char in password):
        refuse("Control characters cannot be typed into a phone; leave them out.", "password_invalid_characters")
    # Scanners try the username with digits and years around it. Two-letter logins are exempt: they turn
    # up inside too many good passwords ("an" in "banana-split") for the rule to mean anything there.
    if login and len(login) >= 3 and login.lower() in password.lower():
        refuse("The password must not contain the username.", "password_contains_username")
    return password
