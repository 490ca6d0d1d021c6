"""The switch adapter: the only code that talks to the telephony switch (see base.py for the interface).

from telephony.switch import get_switch
switch = get_switch()           # the adapter named by settings.SWITCH_ADAPTER, one per process
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from telephony.switch.base import LEG_EVENTS, SwitchAdapter

DEFAULT_ADAPTER = "telephony.switch.simulated.SimulatedSwitch"

_lock = threading.Lock()
_instances: dict[str, SwitchAdapter] = {}


def get_switch() -> SwitchAdapter:
    path = getattr(settings, "SWITCH_ADAPTER", "") or DEFAULT_ADAPTER
    adapter = _instances.get(path)
    if adapter is None:
        with _lock:
            adapter = _instances.get(path)
            if adapter is None:
                adapter = import_string(path)()
                _instances[path] = adapter
    return adapter


__all__ = ["LEG_EVENTS", "SwitchAdapter", "get_switch"]
