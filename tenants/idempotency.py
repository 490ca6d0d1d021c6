"""Idempotency-Key on POSTs: the same key and body within 24 h answer with the first response, once done.

The key row is inserted before the work starts; the unique constraint makes two concurrent requests with
the same key race for it, and the loser answers 409 instead of doing the work twice. A request that
crashes (5xx) gives its key back so the client's retry can run.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from tenants.crypto import decrypt_text, encrypt_text
from tenants.models import Account, IdempotencyKey

HEADER = "Idempotency-Key"
PURPOSE = "tenants.idempotent-responses"


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request."


class IdempotencyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."


class Replay(Exception):
    def __init__(self, response: Response):
        self.response = response


def fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.path.encode())
    digest.update(request._request.body or b"")
    return digest.hexdigest()


def begin(account: Account, request) -> IdempotencyKey | None:
    """Claim the request's key, or raise Replay / a 409. None when the request carries no key."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return None
    key = key.strip()
    if not key or len(key) > 255:
        raise exceptions.ValidationError({HEADER: ["Must be 1 to 255 characters."]})
    fp = fingerprint(request)
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    IdempotencyKey.objects.filter(account=account, key=key, created_at__lt=cutoff).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(account=account, key=key, fingerprint=fp)
    except IntegrityError:
        existing = IdempotencyKey.objects.filter(account=account, key=key).first()
        if existing is None:  # released by a failed request between our insert and read
            return begin(account, request)
    if existing.fingerprint != fp:
        raise IdempotencyConflict()
    if existing.response_status is None:
        raise IdempotencyInProgress()
    response = Response(_open(existing.response_body), status=existing.response_status)
    response["Idempotent-Replayed"] = "true"
    raise Replay(response)


def finish(record: IdempotencyKey, response) -> None:
    if response.status_code >= 500 or not hasattr(response, "data"):
        record.delete()
        return
    # Responses can carry a secret shown once (a new API key, an invite token): stored encrypted, never in clear.
    body = {"encrypted": encrypt_text(PURPOSE, json.dumps(response.data, default=str))}
    IdempotencyKey.objects.filter(pk=record.pk).update(response_status=response.status_code, response_body=body)


def _open(stored: dict | None):
    return json.loads(decrypt_text(PURPOSE, stored["encrypted"])) if stored else stored


def purge_expired() -> int:
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
