"""Isolation-test registrations for bulk calls, extension hooks and web callback settings.

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

import itertools

from telephony.models import BulkCall, ExtensionHook, SipUser
from telephony.services import bulk_calls, extension_hooks
from telephony.tests.isolation_sip import make_number, make_user

_serial = itertools.count(1)


def make_bulk_call(account) -> BulkCall:
    number = make_number(account, f"+1201777{next(_serial):04d}")
    return bulk_calls.bulk_call_create(
        account=account,
        actor=None,
        from_=number.number,
        destinations=["+12025550100", "+12025550101"],
        xml="<Response><Hangup/></Response>",
        window_days=["sun"],  # nothing is placed during the tests that walk it
        window_start="03:00",
        window_end="03:01",
        time_zone="Pacific/Kiritimati",
    )


def make_hook(account) -> ExtensionHook:
    return extension_hooks.extension_hook_create(
        account=account, actor=None, sip_user=make_user(account), event="dial-in", url="http://127.0.0.1:9/hook"
    )


FACTORIES: dict = {BulkCall: make_bulk_call, ExtensionHook: make_hook}
PORTAL_OBJECT_ROUTES: dict = {
    "bulkcalls-detail": BulkCall,
    "bulkcalls-progress": BulkCall,
    "bulkcalls-results": BulkCall,
    "bulkcalls-pause": BulkCall,
    "bulkcalls-resume": BulkCall,
    "bulkcalls-cancel": BulkCall,
    "extensionhook-create": SipUser,
    "extensionhook-edit": ExtensionHook,
    "extensionhook-delete": ExtensionHook,
}
