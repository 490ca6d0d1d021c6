"""Calls: each leg is a row holding its state, the flow document it runs, where it is in it, and its variables.

The database is the call's memory. Execution advances in short Celery tasks that claim the leg (a
conditional UPDATE on `engine_claimed_until`), run commands until one has to wait (for the switch, a
customer's server, or a timer), save the position and let go. Any worker can continue any call, and
a worker that dies mid-step lets its claim expire, after which the sweeper hands the call to another.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import AccountOwnedModel


class CallStatus(models.TextChoices):
    """Restcomm's call states; `in-progress` is the answered state (Opentact's `live`)."""

    QUEUED = "queued", "Queued"
    INITIATED = "initiated", "Initiated"
    RINGING = "ringing", "Ringing"
    IN_PROGRESS = "in-progress", "In progress"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no-answer", "No answer"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


FINAL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, CallStatus.CANCELED}
)


class Call(AccountOwnedModel):
    """One call leg: the caller's leg into the platform (A), or a leg the platform places (B, or an API call)."""

    Status = CallStatus

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND_API = "outbound-api", "Outbound (API)"
        OUTBOUND_DIAL = "outbound-dial", "Outbound (Dial)"

    class FlowState(models.TextChoices):
        NONE = "none", "No flow"  # a leg that only rings (a Dial's B-leg) or a refused call
        RUNNING = "running", "Running"  # a worker may advance it now
        WAITING = "waiting", "Waiting"  # for the switch, a customer's server or a timer
        DONE = "done", "Done"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    direction = models.CharField(max_length=16, choices=Direction.choices)
    from_number = models.CharField(max_length=255, help_text="E.164, a SIP URI, or 'anonymous'.")
    to_number = models.CharField(max_length=255, help_text="E.164 or a SIP URI.")
    status = models.CharField(max_length=16, choices=CallStatus.choices, default=CallStatus.QUEUED)
    q850_cause = models.PositiveSmallIntegerField(null=True, blank=True)
    sip_code = models.PositiveSmallIntegerField(null=True, blank=True)
    end_reason = models.CharField(max_length=300, blank=True, help_text="Why the call ended or was refused.")
    source = models.CharField(max_length=16, default="simulated", help_text="Which switch carried it.")
    switch_call_id = models.CharField(max_length=255, blank=True, help_text="The switch's id, e.g. the SIP Call-ID.")
    tag = models.CharField(max_length=255, blank=True)

    phone_number = models.ForeignKey(
        "telephony.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    app = models.ForeignKey(
        "telephony.CallControlApp", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    sip_user = models.ForeignKey(
        "telephony.SipUser", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sip_connection = models.ForeignKey(
        "telephony.SipConnection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    created_at = models.DateTimeField(default=timezone.now)
    initiated_at = models.DateTimeField(null=True, blank=True)
    ringing_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    # The flow: the parsed document (telephony.callflow's JSON form), the next command's path, and the
    # variables Meta, Curl and Gather set. `flow_wait` says what the leg waits for and carries the token
    # that a late or duplicate wake-up must present.
    flow_state = models.CharField(max_length=16, choices=FlowState.choices, default=FlowState.NONE)
    document = models.JSONField(null=True, blank=True)
    position = models.CharField(max_length=500, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    flow_wait = models.JSONField(null=True, blank=True)
    engine_claimed_until = models.DateTimeField(null=True, blank=True)
    engine_steps = models.PositiveIntegerField(default=0, help_text="Commands executed; bounds runaway flows.")

    status_callback_url = models.CharField(max_length=2000, blank=True)
    status_callback_method = models.CharField(max_length=6, default="POST")
    status_callback_events = models.JSONField(default=list, blank=True)
    status_callback_sequence = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="telephony_call_account_recent"),
            models.Index(fields=["account", "status"], name="telephony_call_account_status"),
            models.Index(fields=["switch_call_id"], name="telephony_call_switch_id"),
            # The call log's "calls to or from this number": one index per side, OR-ed by the planner.
            models.Index(fields=["account", "from_number"], name="telephony_call_account_from"),
            models.Index(fields=["account", "to_number"], name="telephony_call_account_to"),
            # The sweeper's question: which running flows lost their worker?
            models.Index(
                fields=["engine_claimed_until"], condition=Q(flow_state="running"), name="telephony_call_stuck"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CallStatus]), name="telephony_call_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_number} → {self.to_number} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> int:
        """Billable seconds: from answer to end (0 if never answered)."""
        if not self.answered_at:
            return 0
        end = self.ended_at or timezone.now()
        return max(0, int((end - self.answered_at).total_seconds()))


class CallHttpRequest(AccountOwnedModel):
    """One request the platform made to a customer's server for a call (flow URL, Callback, action, Curl)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="http_requests")
    purpose = models.CharField(max_length=32, help_text="call_flow_url, fallback_url, callback, dial_action, ...")
    command_path = models.CharField(max_length=500, blank=True)
    method = models.CharField(max_length=8)
    url = models.CharField(max_length=2000)
    request_body = models.TextField(blank=True)
    # One entry per try: {"at", "duration_ms", "status_code", "error"}.
    attempts = models.JSONField(default=list)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    outcome = models.CharField(max_length=32, help_text="ok, http_error, timeout, refused, invalid_xml, ...")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.method} {self.url} ({self.outcome})"
