"""Portal pages for webhooks, under /a/<account>/: the endpoints, and the delivery log with each attempt.

Endpoint pages: list (with health), create and edit (the URL goes through the outbound URL policy), delete,
rotate the secret (the new one shown once, the old one signing beside it for 24 h), send a test event, and
"recover failed since". The delivery log spans the account (every kind: events, test sends, and whatever
status callbacks the platform sends for the account) and reads with keyset pages like the event browser;
one delivery's page shows each attempt's request headers, the body, the response and the timings.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import django_filters
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views import View
from django.views.generic import FormView, TemplateView

from telephony import delivery as engine
from telephony import event_types
from telephony.filtersets.events import DeliveryFilterSet, WebhookEndpointFilterSet
from telephony.models import Delivery, WebhookEndpoint
from telephony.services import callbacks as callback_services
from telephony.services import webhooks as services
from tenants.models import AuditEntry
from tenants.scoping import AccountPortalMixin, parse_public_id
from tenants.views import ScopedListView, _add_errors

PAGE_SIZE = 50
RECENT_DELIVERIES = 20
SIGNATURE_SHOWN = 12  # characters of each signature's base64 shown: enough to compare, not to copy
REFRESH_WHILE_DUE_WITHIN = timedelta(seconds=10)


def customer_endpoints(queryset):
    """The endpoints people manage on these pages: the platform's hidden per-callback-URL endpoints stay out.

    Those carry the status callbacks an app or a call names; their requests appear in the delivery log by kind.
    """
    return queryset.webhooks()


def is_customer_endpoint(endpoint: WebhookEndpoint) -> bool:
    return endpoint.purpose == WebhookEndpoint.Purpose.WEBHOOK


def circuit_state(endpoint: WebhookEndpoint, now: datetime) -> str:
    """closed (sending), open (waiting out a cool-down), half-open (one probe decides), or off (disabled)."""
    if not endpoint.enabled:
        return "off"
    if endpoint.circuit_open_until and endpoint.circuit_open_until > now:
        return "open"
    if endpoint.consecutive_failures >= settings.WEBHOOK_CIRCUIT_FAILURES:
        return "half-open"
    return "closed"


# --- Forms -------------------------------------------------------------------------------------------


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(
        max_length=2000,
        label="URL",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks", "spellcheck": "false"}),
        help_text="http or https. Private, loopback and link-local addresses are refused, here and at every send.",
    )
    description = forms.CharField(max_length=500, required=False)
    event_types = forms.CharField(
        label="Event types",
        initial="*",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "call.*\nnumber.ordered", "spellcheck": "false"}),
        help_text="One per line or separated by commas: a type (<code>number.ordered</code>), a family "
        "(<code>call.*</code>), or <code>*</code> for everything.",
    )
    payload_format = forms.ChoiceField(
        choices=WebhookEndpoint.PayloadFormat.choices,
        initial=WebhookEndpoint.PayloadFormat.JSON,
        label="Payload format",
    )
    rate_limit = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        required=False,
        label="Rate limit (per second)",
        help_text="At most this many deliveries per second to this URL; empty for no limit.",
    )
    enabled = forms.BooleanField(required=False, initial=True, help_text="Disabled endpoints receive nothing.")

    def clean_event_types(self) -> list[str]:
        return [item for item in re.split(r"[\s,]+", self.cleaned_data["event_types"]) if item]


def _test_event_choices() -> list[tuple[str, str]]:
    names = sorted(entry.name for entry in event_types.CATALOGUE if not entry.is_family)
    return [(name, name) for name in names]


class TestSendForm(forms.Form):
    event_type = forms.ChoiceField(choices=_test_event_choices, initial="webhook.test", label="Event type")


class RecoverForm(forms.Form):
    since = forms.DateTimeField(
        label="Failed since (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Every delivery to this endpoint created since then that failed for good is sent again.",
    )


# --- Endpoints -----------------------------------------------------------------------------------------


class WebhookEndpointListFilterSet(WebhookEndpointFilterSet):
    """The API's endpoint filters, with the state as a plain any/enabled/disabled choice."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filters["enabled"] = django_filters.BooleanFilter(
            field_name="enabled",
            label="State",
            widget=forms.Select(choices=[("", "Any"), ("true", "Enabled"), ("false", "Disabled")]),
        )


class WebhookEndpointListView(ScopedListView):
    model = WebhookEndpoint
    filterset_class = WebhookEndpointListFilterSet
    template_name = "telephony/webhookendpoint_list.html"

    def get_queryset(self):
        return customer_endpoints(super().get_queryset()).order_by("-created_at", "-id")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        for endpoint in context["object_list"]:
            endpoint.circuit = circuit_state(endpoint, now)
        context["callback_secret"] = callback_services.callback_signing_secret_get(account=self.account)
        return context


class EndpointMixin(AccountPortalMixin):
    """Pages about one endpoint, found by its public id within the account."""

    def get_endpoint(self) -> WebhookEndpoint:
        if not hasattr(self, "_endpoint"):
            endpoints = customer_endpoints(WebhookEndpoint.objects.all())
            self._endpoint = self.get_object_or_404(endpoints, self.kwargs["id"])
        return self._endpoint

    def detail_url(self) -> str:
        return reverse(
            "webhookendpoint-detail", kwargs={"account": self.account.slug, "id": self.get_endpoint().public_id}
        )

    def render_secret(self, endpoint: WebhookEndpoint, secret: str, *, rotated: bool):
        # The secret is rendered into this one response and is never shown again.
        response = render(
            self.request,
            "telephony/webhookendpoint_secret.html",
            {**self.get_context_data(), "endpoint": endpoint, "secret": secret, "rotated": rotated},
        )
        response["Cache-Control"] = "no-store"
        return response


class WebhookEndpointCreateView(EndpointMixin, FormView):
    write_required = True
    form_class = WebhookEndpointForm
    template_name = "telephony/webhookendpoint_form.html"

    def form_valid(self, form):
        try:
            created = services.webhook_endpoint_create(
                account=self.account, actor=self.request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        return self.render_secret(created.endpoint, created.secret, rotated=False)


class WebhookEndpointDetailView(EndpointMixin, TemplateView):
    template_name = "telephony/webhookendpoint_detail.html"

    def get_context_data(self, **kwargs):
        endpoint = self.get_endpoint()
        now = timezone.now()
        kwargs.setdefault("test_form", TestSendForm())
        kwargs.setdefault("recover_form", RecoverForm(initial={"since": (now - timedelta(days=1)).replace(second=0)}))
        deliveries = (
            self.scoped(Delivery)
            .filter(endpoint=endpoint)
            .select_related("event")
            .defer("event__payload")
            .order_by("-id")[:RECENT_DELIVERIES]
        )
        audit = self.scoped(AuditEntry).filter(object_type="webhookendpoint", object_id=str(endpoint.public_id))
        return super().get_context_data(
            endpoint=endpoint,
            circuit=circuit_state(endpoint, now),
            previous_secret_valid=bool(
                endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now
            ),
            deliveries=list(deliveries),
            log_url=f"{reverse('webhookdelivery-list', kwargs={'account': self.account.slug})}"
            f"?webhook={endpoint.public_id}",
            audit=audit.order_by("-created_at", "-id")[:10],
            disable_after_days=settings.WEBHOOK_DISABLE_AFTER_DAYS,
            circuit_failures=settings.WEBHOOK_CIRCUIT_FAILURES,
            circuit_cooldown=settings.WEBHOOK_CIRCUIT_COOLDOWN_SECONDS,
            **kwargs,
        )


class WebhookEndpointEditView(EndpointMixin, FormView):
    write_required = True
    form_class = WebhookEndpointForm
    template_name = "telephony/webhookendpoint_form.html"

    def get_initial(self):
        endpoint = self.get_endpoint()
        return {
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": "\n".join(endpoint.event_types),
            "payload_format": endpoint.payload_format,
            "rate_limit": endpoint.rate_limit,
            "enabled": endpoint.enabled,
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(endpoint=self.get_endpoint(), **kwargs)

    def form_valid(self, form):
        try:
            services.webhook_endpoint_update(
                account=self.account, actor=self.request.user, endpoint=self.get_endpoint(), **form.cleaned_data
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "The webhook endpoint was saved.")
        return redirect(self.detail_url())


class WebhookEndpointDeleteView(EndpointMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"

    def get_context_data(self, **kwargs):
        endpoint = self.get_endpoint()
        return super().get_context_data(
            object=endpoint.url,
            title="Delete this webhook endpoint?",
            explanation="It receives nothing more, deliveries waiting for it are dropped, and its delivery history "
            "goes with it. To pause it instead, edit it and untick Enabled.",
            confirm_label="Delete endpoint",
            cancel_url=self.detail_url(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        endpoint = self.get_endpoint()
        services.webhook_endpoint_delete(account=self.account, actor=request.user, endpoint=endpoint)
        messages.success(request, f"The webhook endpoint {endpoint.url} was deleted.")
        return redirect("webhookendpoint-list", account=self.account.slug)


class WebhookEndpointRotateView(EndpointMixin, TemplateView):
    """Confirm, then rotate: the new secret is shown once; the old one keeps signing beside it for 24 hours."""

    write_required = True
    template_name = "confirm_delete.html"

    def get_context_data(self, **kwargs):
        endpoint = self.get_endpoint()
        return super().get_context_data(
            object=endpoint.url,
            title="Rotate the signing secret?",
            explanation="A new secret is made and shown once. For 24 hours every request carries two signatures, "
            "one with each secret, so your receiver keeps working while you switch it to the new one; then the old "
            "secret stops.",
            confirm_label="Rotate secret",
            cancel_url=self.detail_url(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        rotated = services.webhook_endpoint_rotate_secret(
            account=self.account, actor=request.user, endpoint=self.get_endpoint()
        )
        return self.render_secret(rotated.endpoint, rotated.secret, rotated=True)


class WebhookEndpointTestView(WebhookEndpointDetailView):
    """The send-a-test-event form: one sample to this endpoint only, then its delivery's page."""

    write_required = True

    def get(self, request, *args, **kwargs):
        return redirect(self.detail_url())

    def post(self, request, *args, **kwargs):
        form = TestSendForm(request.POST)
        if form.is_valid():
            try:
                delivery = services.webhook_endpoint_send_test(
                    account=self.account,
                    actor=request.user,
                    endpoint=self.get_endpoint(),
                    event_type=form.cleaned_data["event_type"],
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"A test {form.cleaned_data['event_type']} event is on its way.")
                return redirect("webhookdelivery-detail", account=self.account.slug, id=delivery.public_id)
        return self.render_to_response(self.get_context_data(test_form=form))


class WebhookEndpointRecoverView(WebhookEndpointDetailView):
    """The "recover failed since" form: errors are shown on the endpoint's page, where the form is."""

    write_required = True

    def get(self, request, *args, **kwargs):
        return redirect(self.detail_url())

    def post(self, request, *args, **kwargs):
        form = RecoverForm(request.POST)
        if form.is_valid():
            try:
                count = services.webhook_endpoint_recover(
                    account=self.account,
                    actor=request.user,
                    endpoint=self.get_endpoint(),
                    since=form.cleaned_data["since"],
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                if count:
                    messages.success(request, f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again.")
                else:
                    messages.info(request, "No failed deliveries since then; nothing to send again.")
                return redirect(self.detail_url())
        return self.render_to_response(self.get_context_data(recover_form=form))


# --- Deliveries --------------------------------------------------------------------------------------


class DeliveryLogFilterSet(DeliveryFilterSet):
    """The API's delivery filters, with the endpoint picked from the account's endpoints by URL."""

    def __init__(self, *args, endpoints=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filters["webhook"] = django_filters.ChoiceFilter(
            field_name="endpoint__public_id",
            label="Endpoint",
            choices=[(str(e.public_id), e.url[:80]) for e in endpoints],
        )
        self.filters.pop("event", None)  # reachable from the event's own page
        self.filters["event_type"].label = "Event type (e.g. call.* )"
        self.filters["created_after"].label = "From (UTC, e.g. 2025-01-31 14:00)"
        self.filters["created_before"].label = "Until (UTC)"


class DeliveryListView(AccountPortalMixin, TemplateView):
    template_name = "telephony/delivery_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        before = params.pop("before", [None])[-1]
        endpoints = customer_endpoints(self.scoped(WebhookEndpoint)).order_by("url", "id").only("public_id", "url")
        queryset = self.scoped(Delivery).select_related("endpoint", "event").defer("event__payload").order_by("-id")
        filterset = DeliveryLogFilterSet(params, queryset=queryset, endpoints=list(endpoints))
        deliveries: list[Delivery] = []
        if filterset.is_valid():
            queryset = filterset.qs
            start = self._position(before)
            if start is not None:
                queryset = queryset.filter(id__lt=start)
            deliveries = list(queryset[: PAGE_SIZE + 1])
        has_older = len(deliveries) > PAGE_SIZE
        deliveries = deliveries[:PAGE_SIZE]
        older = params.copy()
        if has_older:
            older["before"] = str(deliveries[-1].public_id)
        for delivery in deliveries:
            delivery.endpoint_listed = is_customer_endpoint(delivery.endpoint)
        context.update(
            filter=filterset,
            deliveries=deliveries,
            paged=bool(before),
            older_query=older.urlencode() if has_older else "",
            newest_query=params.urlencode(),
        )
        return context

    def _position(self, before: str | None) -> int | None:
        parsed = parse_public_id(before) if before else None
        if parsed is None:
            return None
        return self.scoped(Delivery).filter(public_id=parsed).values_list("id", flat=True).first()


def _short_signatures(value: str) -> str:
    """`v1,<base64> v1,<base64>` with each signature cut short: enough to tell them apart on the page."""
    parts = []
    for signature in value.split():
        version, _, digest = signature.partition(",")
        parts.append(f"{version},{digest[:SIGNATURE_SHOWN]}…" if len(digest) > SIGNATURE_SHOWN else signature)
    return " ".join(parts)


def _request_headers(headers: dict) -> list[tuple[str, str, str]]:
    """(name, value as shown, note) in the order they are sent."""
    rows = []
    for name, value in headers.items():
        note = ""
        if name == "webhook-signature":
            count = len(value.split())
            value = _short_signatures(value)
            if count > 1:
                note = "two signatures: the new secret's and, for 24 h after a rotation, the old one's"
        elif name == "webhook-timestamp" and value.isdigit():
            note = datetime.fromtimestamp(int(value), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append((name, value, note))
    return rows


class DeliveryMixin(AccountPortalMixin):
    def get_delivery(self) -> Delivery:
        if not hasattr(self, "_delivery"):
            self._delivery = self.get_object_or_404(
                Delivery.objects.select_related("endpoint", "event", "account", "call"), self.kwargs["id"]
            )
        return self._delivery

    def detail_url(self) -> str:
        return reverse(
            "webhookdelivery-detail", kwargs={"account": self.account.slug, "id": self.get_delivery().public_id}
        )


class DeliveryDetailView(DeliveryMixin, TemplateView):
    template_name = "telephony/delivery_detail.html"

    def get_context_data(self, **kwargs):
        delivery = self.get_delivery()
        now = timezone.now()
        attempts = list(delivery.attempts.order_by("-number", "-id"))
        for attempt in attempts:
            attempt.request_rows = _request_headers(attempt.request_headers or {})
            attempt.response_rows = sorted((attempt.response_headers or {}).items())
        outgoing = self._outgoing(delivery, now)
        # Refresh while an attempt is in flight (claimed) or about to be: a test send shows its answer unasked.
        due_soon = delivery.status == Delivery.Status.PENDING and (
            bool(delivery.claimed_until and delivery.claimed_until > now)
            or (delivery.next_attempt_at is not None and delivery.next_attempt_at <= now + REFRESH_WHILE_DUE_WITHIN)
        )
        return super().get_context_data(
            delivery=delivery,
            endpoint_listed=is_customer_endpoint(delivery.endpoint),
            attempts=attempts,
            outgoing=outgoing,
            auto_refresh=due_soon,
            **kwargs,
        )

    def _outgoing(self, delivery: Delivery, now: datetime) -> dict | None:
        """The request as the engine builds it: its body is the same on every attempt (the timestamp and signature
        headers, and for a callback with a fallback the URL, differ per attempt and are kept on each)."""
        try:
            outgoing = engine.build_request(delivery, now)
        except RuntimeError:  # the signing secret cannot be decrypted: nothing can be signed, nor shown
            return None
        content_type = outgoing.headers.get("content-type", "")
        body = outgoing.body.decode("utf-8", "replace") if isinstance(outgoing.body, bytes) else outgoing.body
        if "json" in content_type and body:
            with contextlib.suppress(ValueError):
                body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        fields = parse_qsl(body, keep_blank_values=True) if "form-urlencoded" in content_type else []
        return {"method": outgoing.method, "content_type": content_type, "body": body, "fields": fields}


class DeliveryReplayView(DeliveryMixin, View):
    """Send one delivery again now (POST, CSRF-checked); GET leads back to its page."""

    write_required = True

    def get(self, request, *args, **kwargs):
        return HttpResponseRedirect(self.detail_url())

    def post(self, request, *args, **kwargs):
        try:
            services.delivery_replay(account=self.account, actor=request.user, delivery=self.get_delivery())
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "The delivery is being sent again, with the same webhook-id.")
        return HttpResponseRedirect(self.detail_url())


class CallbackSecretRotateView(AccountPortalMixin, TemplateView):
    """The account-level secret that signs status callbacks, extension hooks and message callbacks.

    Confirm, then rotate: shown once in clear, the old one signing beside it for 24 hours, as for endpoints.
    """

    write_required = True
    template_name = "confirm_delete.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            object="Callback signing secret",
            title="Rotate the callback signing secret?",
            explanation="A new secret is made and shown once. For 24 hours every status callback, extension hook "
            "and message callback carries two signatures, one with each secret; then the old secret stops.",
            confirm_label="Rotate secret",
            cancel_url=reverse("webhookendpoint-list", kwargs={"account": self.account.slug}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        info = callback_services.callback_signing_secret_rotate(account=self.account, actor=request.user)
        response = render(
            request, "telephony/callbacksecret_rotated.html", {**super().get_context_data(), "info": info}
        )
        response["Cache-Control"] = "no-store"  # the secret is in this one response only
        return response


def _route(route: str, view, name: str):
    return path(f"a/<slug:account>/{route}", view.as_view(), name=name)


_endpoint = "webhooks/<str:id>/"
_delivery = "deliveries/<str:id>/"

urlpatterns = [
    _route("webhooks/", WebhookEndpointListView, "webhookendpoint-list"),
    _route("webhooks/new/", WebhookEndpointCreateView, "webhookendpoint-create"),
    _route(_endpoint, WebhookEndpointDetailView, "webhookendpoint-detail"),
    _route(f"{_endpoint}edit/", WebhookEndpointEditView, "webhookendpoint-edit"),
    _route(f"{_endpoint}delete/", WebhookEndpointDeleteView, "webhookendpoint-delete"),
    _route(f"{_endpoint}rotate-secret/", WebhookEndpointRotateView, "webhookendpoint-rotate"),
    _route(f"{_endpoint}test/", WebhookEndpointTestView, "webhookendpoint-test"),
    _route(f"{_endpoint}recover/", WebhookEndpointRecoverView, "webhookendpoint-recover"),
    _route("webhooks/callback-secret/rotate/", CallbackSecretRotateView, "callbacksecret-rotate"),
    _route("deliveries/", DeliveryListView, "webhookdelivery-list"),
    _route(_delivery, DeliveryDetailView, "webhookdelivery-detail"),
    _route(f"{_delivery}replay/", DeliveryReplayView, "webhookdelivery-replay"),
]
