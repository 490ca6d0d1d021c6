"""SIP digest hashes and the login and password rules (telephony/sipauth.py)."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import ValidationError

from telephony import sipauth


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - the digest scheme SIP uses


def codes(exc: ValidationError, field: str) -> list[str]:
    return [error.code for error in exc.error_dict[field]]


def test_it_computes_ha1_and_ha1b_the_way_the_registrar_checks_them():
    ha1, ha1b = sipauth.digest_hashes("mary", "acme.sip.example.net", "correct horse")

    assert ha1 == md5("mary:acme.sip.example.net:correct horse")
    assert ha1b == md5("mary@acme.sip.example.net:acme.sip.example.net:correct horse")
    assert len(ha1) == len(ha1b) == 32


def test_it_uses_the_platform_domain_as_the_realm_of_connections(settings):
    settings.PLATFORM_SIP_DOMAIN = "voice.example.org"
    assert sipauth.connection_realm() == "voice.example.org"


@pytest.mark.parametrize(
    "password,code",
    [
        ("short1!", "password_too_short"),
        ("0123456789012", "password_all_digits"),
        ("xxMARY-2024xx", "password_contains_username"),
        ("tab\there-long-enough", "password_invalid_characters"),
        ("x" * 129, "password_too_long"),
        ("", "required"),
    ],
)
def test_it_refuses_weak_passwords_with_a_code_per_rule(password, code):
    with pytest.raises(ValidationError) as caught:
        sipauth.validate_password(password, login="mary")
    assert codes(caught.value, "password") == [code]


def test_it_accepts_a_long_password_with_symbols():
    assert sipauth.validate_password("blue-lantern-42!", login="mary") == "blue-lantern-42!"


@pytest.mark.parametrize("login", ["m", "a" * 65, "mary smith", "mary@acme", "märy"])
def test_it_refuses_logins_outside_the_allowed_shape(login):
    with pytest.raises(ValidationError) as caught:
        sipauth.validate_login(login, field="login", min_length=2)
    assert "login" in caught.value.error_dict


@pytest.mark.parametrize("login", ["mx", "mary.smith", "desk_1", "front-desk", "A" * 64])
def test_it_accepts_logins_of_letters_digits_dots_underscores_and_hyphens(login):
    assert sipauth.validate_login(login, field="login", min_length=2) == login


def test_a_two_letter_login_may_appear_inside_a_password():
    assert sipauth.validate_password("banana-split-9", login="an") == "banana-split-9"
