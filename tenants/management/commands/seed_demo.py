"""A demo account to try the product with: an owner login and an API key, printed and saved to var/.

Idempotent: run it again and it prints the same credentials if they still work, and repairs them if not
(a changed password, a revoked key), without creating a second account.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from telephony.services.numbers import stock_load_demo
from tenants import services
from tenants.credentials import find_api_key
from tenants.models import Account, Membership, Role, User

DEMO_EMAIL = "demo@example.com"
DEMO_SLUG = "demo"
KEY_NAME = "Demo key"


def _read_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    lines = (line.partition(": ") for line in path.read_text().splitlines())
    return {key.strip(): value.strip() for key, _, value in lines if value}


class Command(BaseCommand):
    help = "Create (or repair) the demo account, its owner login and API key; print them."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=str(settings.VAR_DIR / "demo-credentials.txt"))

    @transaction.atomic
    def handle(self, *args, output: str, **options):
        path = Path(output)
        saved = _read_credentials(path)

        user = User.objects.filter(email__iexact=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(email=DEMO_EMAIL, name="Demo Owner")
        password = saved.get("password")
        if not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])

        account = Account.objects.filter(slug=DEMO_SLUG).first()
        if account is None:
            account = services.account_create(name="Demo Co", slug=DEMO_SLUG, owner=user)
        elif not Membership.objects.for_account(account).filter(user=user).exists():
            Membership.objects.create(account=account, user=user, role=Role.OWNER)

        api_key = saved.get("api_key")
        existing = find_api_key(api_key) if api_key else None
        if existing is None or existing.account_id != account.pk or not existing.is_usable():
            api_key = services.api_key_create(account=account, actor=user, name=KEY_NAME).secret

        # Numbers to search and order straight away (several US area codes and toll-free); idempotent.
        new_stock = stock_load_demo()

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"email: {DEMO_EMAIL}\npassword: {password}\napi_key: {api_key}\n")
        path.chmod(0o600)
        self.stdout.write(
            f"\nDemo account ready (saved in {path}):\n"
            f"  portal login  email: {DEMO_EMAIL}  password: {password}\n"
            f"  API key       {api_key}\n"
            f"  demo stock    {new_stock} new numbers (area codes 201, 212, 312, 415, 512 and toll-free 888)\n"
        )
