"""The carrier adapter: the only code that talks to an SMS carrier (see base.py for the interface).

from telephony.carrier import get_carrier
carrier = get_carrier()         # the adapter named by settings.CARRIER_ADAPTER, one per process
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from telephony.carrier.base import RECEIPT_STATUSES, CarrierAdapter, SubmitResult

DEFAULT_ADAPTER = "telephony.carrier.simulated.SimulatedCarrier"

_lock = threading.Lock()
_instances: dict[str, CarrierAdapter] = {}


def get_carrier() -> CarrierAdapter:
    path = getattr(settings, "CARRIER_ADAPTER", "") or DEFAULT_ADAPTER
    adapter = _instances.get(path)
    if adapter is None:
        with _lock:
            adapter = _instances.get(path)
            if adapter is None:
                adapter = import_string(path)()
                _instances[path] = adapter
    return adapter


__all__ = ["RECEIPT_STATUSES", "CarrierAdapter", "SubmitResult", "get_carrier"]
