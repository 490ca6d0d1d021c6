"""Tasks of the SIP edge: thin, they load by id and call telephony.services.sip_edge_lifecycle."""

from __future__ import annotations

from celery import shared_task

from telephony.services import sip_edge_lifecycle
from telephony.switch.kamailio import kamailio_started_at, live_dialog_call_ids


@shared_task(name="telephony.edge_tasks.reconcile", ignore_result=True)
def reconcile() -> int:
    return sip_edge_lifecycle.edge_reconcile(live_dialogs=live_dialog_call_ids, started_at=kamailio_started_at)
