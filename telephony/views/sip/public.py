"""The public invite page, /invite/<token>: the link an invited person follows to create their SIP login."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.views import View

from telephony.services import sip as services
from telephony.views.sip.common import add_service_errors
from telephony.views.sip.forms import InviteAcceptForm
from tenants.throttling import hit

# Per client address. The token is unguessable, so this bounds password-rule probing and floods, not guessing.
INVITE_POSTS_PER_MINUTE = 10
INVITE_VIEWS_PER_MINUTE = 60

_UNAVAILABLE_STATUS = {"not_found": 404, "used": 410, "expired": 410, "suspended": 403}


class InviteView(View):
    """Public on purpose (no login): the invited person has no portal account, only the link."""

    template_name = "telephony/invite_accept.html"

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        # The token is in the URL: keep the page out of caches, other sites' referrers and search engines.
        # Not "no-referrer": browsers then send `Origin: null` with the form, and CSRF protection refuses it.
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    def _throttled(self, request, limit: int, kind: str):
        address = request.META.get("REMOTE_ADDR", "")
        wait = hit(f"sip-invite-{kind}:{address}", limit, 60)
        if wait is None:
            return None
        response = render(request, "telephony/invite_unavailable.html", {"reason": "throttled"}, status=429)
        response["Retry-After"] = str(int(wait) + 1)
        return response

    def _find(self, request, token):
        try:
            return services.sip_invite_find(token), None
        except services.InviteUnavailable as exc:
            status = _UNAVAILABLE_STATUS[exc.reason]
            return None, render(request, "telephony/invite_unavailable.html", {"reason": exc.reason}, status=status)

    def get(self, request, token):
        throttled = self._throttled(request, INVITE_VIEWS_PER_MINUTE, "view")
        if throttled:
            return throttled
        invite, unavailable = self._find(request, token)
        if unavailable:
            return unavailable
        return render(request, self.template_name, {"invite": invite, "form": InviteAcceptForm()})

    def post(self, request, token):
        throttled = self._throttled(request, INVITE_POSTS_PER_MINUTE, "post")
        if throttled:
            return throttled
        invite, unavailable = self._find(request, token)
        if unavailable:
            return unavailable
        form = InviteAcceptForm(request.POST)
        if form.is_valid():
            try:
                user = services.sip_invite_accept(
                    token=token, login=form.cleaned_data["login"], password=form.cleaned_data["password"]
                )
            except services.InviteUnavailable as exc:
                status = _UNAVAILABLE_STATUS[exc.reason]
                return render(request, "telephony/invite_unavailable.html", {"reason": exc.reason}, status=status)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                return render(request, "telephony/invite_done.html", {"sip_user": user})
        return render(request, self.template_name, {"invite": invite, "form": form})
