"""Portal pages for SIP connections, invites, SIP domains and SIP users, under /a/<account>/.

Plus one public page, /invite/<token>: the link an invited person follows to create their own SIP login.
"""

from __future__ import annotations

from django.urls import path

from telephony.views.sip.connections import (
    SipConnectionCreateView,
    SipConnectionDeleteView,
    SipConnectionDetailView,
    SipConnectionEditView,
    SipConnectionListView,
    SipConnectionNumbersView,
    SipInviteCreateView,
    SipInviteRevokeView,
)
from telephony.views.sip.domains import (
    SipDomainCreateView,
    SipDomainDeleteView,
    SipDomainDetailView,
    SipDomainEditView,
    SipDomainListView,
    SipUserCreateView,
    SipUserDeleteView,
    SipUserDetailView,
    SipUserEditView,
)
from telephony.views.sip.public import INVITE_POSTS_PER_MINUTE, INVITE_VIEWS_PER_MINUTE, InviteView

__all__ = ["INVITE_POSTS_PER_MINUTE", "INVITE_VIEWS_PER_MINUTE", "urlpatterns"]


def _route(suffix: str, view, name: str):
    return path(f"a/<slug:account>/{suffix}", view.as_view(), name=name)


urlpatterns = [
    _route("sip-connections/", SipConnectionListView, "sipconnection-list"),
    _route("sip-connections/new/", SipConnectionCreateView, "sipconnection-create"),
    _route("sip-connections/<str:id>/", SipConnectionDetailView, "sipconnection-detail"),
    _route("sip-connections/<str:id>/edit/", SipConnectionEditView, "sipconnection-edit"),
    _route("sip-connections/<str:id>/delete/", SipConnectionDeleteView, "sipconnection-delete"),
    _route("sip-connections/<str:id>/numbers/", SipConnectionNumbersView, "sipconnection-numbers"),
    _route("sip-connections/<str:id>/invites/new/", SipInviteCreateView, "sipconnection-invite-create"),
    _route("sip-invites/<str:id>/revoke/", SipInviteRevokeView, "sipconnection-invite-revoke"),
    _route("sip-domains/", SipDomainListView, "sipdomain-list"),
    _route("sip-domains/new/", SipDomainCreateView, "sipdomain-create"),
    _route("sip-domains/<str:id>/", SipDomainDetailView, "sipdomain-detail"),
    _route("sip-domains/<str:id>/edit/", SipDomainEditView, "sipdomain-edit"),
    _route("sip-domains/<str:id>/delete/", SipDomainDeleteView, "sipdomain-delete"),
    _route("sip-domains/<str:id>/users/new/", SipUserCreateView, "sipuser-create"),
    _route("sip-users/<str:id>/", SipUserDetailView, "sipuser-detail"),
    _route("sip-users/<str:id>/edit/", SipUserEditView, "sipuser-edit"),
    _route("sip-users/<str:id>/delete/", SipUserDeleteView, "sipuser-delete"),
    # No trailing slash: the link is https://<host>/invite/<token>, and a redirect would lose a POST.
    path("invite/<str:token>", InviteView.as_view(), name="invite"),
]
