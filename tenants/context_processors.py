from __future__ import annotations

from django.conf import settings

from tenants.scoping import memberships_for


def portal(request) -> dict:
    """The account switcher's choices and the platform's name, for every page."""
    context = {"platform_name": settings.PLATFORM_NAME}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["my_memberships"] = memberships_for(user)
    return context
