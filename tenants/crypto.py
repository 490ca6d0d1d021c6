"""Encryption at rest for values the platform must read back (signing secrets, remembered responses).

Passwords and API keys are hashed instead; this is for what has to be used in clear later. Each use has
its own purpose string, so a key derived for one purpose cannot decrypt another's data. Keys derive from
SECRET_KEY, and SECRET_KEY_FALLBACKS still decrypt, so rotating the site key does not orphan old rows.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class UndecryptableError(RuntimeError):
    """The data was encrypted under a key this deployment no longer has."""


def _fernet_key(purpose: str, material: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(f"{purpose}:{material}".encode()).digest())


@cache
def _cipher(purpose: str, primary: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(purpose, key)) for key in (primary, *fallbacks) if key])


def cipher(purpose: str, primary: str | None = None) -> MultiFernet:
    fallbacks = tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return _cipher(purpose, primary or settings.SECRET_KEY, fallbacks)


def encrypt_text(purpose: str, text: str, *, key: str | None = None) -> str:
    return cipher(purpose, key).encrypt(text.encode()).decode()


def decrypt_text(purpose: str, token: str, *, key: str | None = None) -> str:
    try:
        return cipher(purpose, key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise UndecryptableError(f"Cannot decrypt {purpose} data: the key it was encrypted with is gone.") from exc
