"""Tenant isolation, checked over every route the project registers, not a hand-picked few.

1. Every API route is an AccountScopedViewSet and every /a/<account>/ page an AccountPortalMixin view,
   except an explicit list of deliberately public views.
2. Charlie (owner of B, with full rights there) gets 404 for every API and portal route that names an
   object of account A, and never sees A's objects in a list.

A new resource fails this test until its model has a factory in ISOLATION_FACTORIES and its portal
object pages are named in PORTAL_OBJECT_ROUTES: that is the point.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

import portal.urls  # noqa: F401 - registers every viewset on the router before parametrize reads it
import telephony.tests as telephony_tests
from portal.api import router
from tenants.models import ApiKey, AuditEntry, Membership
from tenants.scoping import AccountPortalMixin, AccountScopedViewSet
from tenants.tests.factories import MembershipFactory, make_api_key

pytestmark = pytest.mark.django_db

# Views that are public or not account-scoped on purpose, by dotted name, each with its reason.
OPTED_OUT = {
    "tenants.api.views.AuthView": "exchanges a password for a token; there is no account yet",
    "drf_spectacular.views.SpectacularAPIView": "the public OpenAPI document",
    "drf_spectacular.views.SpectacularSwaggerView": "the public API docs page",
    "portal.api.api_not_found": "the JSON 404 for unknown API paths",
    "telephony.api.web_callback.WebCallbackView": "a softphone signs in with a SIP user's credentials, which name "
    "the account (Acrobits web callback)",
}


def _make_membership(account):
    return MembershipFactory(account=account, role="developer")


def _make_api_key(account):
    return make_api_key(account, name="A's key")[1]


def _make_audit_entry(account):
    from tenants import services

    return services.audit_record(account=account, actor=None, action="account.touched", obj=account)


# model -> a function making one row of that model in the given account.
ISOLATION_FACTORIES: dict[type, Callable] = {
    Membership: _make_membership,
    ApiKey: _make_api_key,
    AuditEntry: _make_audit_entry,
}

# Portal routes whose `id` names an object: route name -> model.
PORTAL_OBJECT_ROUTES: dict[str, type] = {
    "member-edit": Membership,
    "member-remove": Membership,
    "apikey-detail": ApiKey,
    "apikey-revoke": ApiKey,
}

# Each telephony area registers its own in telephony/tests/isolation_<area>.py.
for _module in pkgutil.iter_modules(telephony_tests.__path__):
    if _module.name.startswith("isolation_"):
        _registrations = importlib.import_module(f"telephony.tests.{_module.name}")
        ISOLATION_FACTORIES.update(_registrations.FACTORIES)
        PORTAL_OBJECT_ROUTES.update(_registrations.PORTAL_OBJECT_ROUTES)


def walk(patterns=None, prefix: str = ""):
    """(route string, url pattern) for every leaf route of the project."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def view_class(pattern: URLPattern):
    callback = pattern.callback
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def dotted(pattern: URLPattern) -> str:
    target = view_class(pattern) or pattern.callback
    return f"{target.__module__}.{target.__qualname__}"


def test_every_api_route_goes_through_the_scoping_viewset():
    unscoped = []
    for route, pattern in walk():
        if not route.startswith("api/") or dotted(pattern) in OPTED_OUT:
            continue
        cls = view_class(pattern)
        if cls is None or not issubclass(cls, AccountScopedViewSet):
            unscoped.append(f"{route} -> {dotted(pattern)}")
    assert unscoped == [], "API routes outside AccountScopedViewSet (or add them to OPTED_OUT with a reason)"


def test_every_account_page_goes_through_the_portal_mixin():
    unscoped = []
    account_pages = 0
    for route, pattern in walk():
        if "<slug:account>" not in route:
            continue
        account_pages += 1
        cls = view_class(pattern)
        if cls is None or not issubclass(cls, AccountPortalMixin):
            unscoped.append(f"{route} -> {dotted(pattern)}")
    assert account_pages > 0
    assert unscoped == []


def test_every_portal_object_route_is_covered_by_the_cross_account_test():
    object_routes = {p.name for route, p in walk() if "<slug:account>" in route and "<str:id>" in route}
    assert object_routes == set(PORTAL_OBJECT_ROUTES), "name the model of each new object page"


@pytest.mark.parametrize("prefix,viewset", [(prefix, viewset) for prefix, viewset, _ in router.registry])
def test_charlie_gets_404_for_every_object_of_account_a(prefix, viewset, alice, charlie, token_client):
    model = viewset.queryset.model
    assert model in ISOLATION_FACTORIES, f"add a factory for {model.__name__} to ISOLATION_FACTORIES"
    obj = ISOLATION_FACTORIES[model](alice.account)
    before = model.objects.filter(pk=obj.pk).values().get()
    as_charlie = token_client(charlie.user, charlie.account)
    url = f"/api/v1/{prefix}/{obj.public_id}"

    responses = {
        "GET": as_charlie.get(url),
        "PATCH": as_charlie.patch(url, {"name": "stolen", "role": "owner"}, format="json"),
        "PUT": as_charlie.put(url, {"name": "stolen"}, format="json"),
        "DELETE": as_charlie.delete(url),
        "POST": as_charlie.post(f"{url}/anything", {}, format="json"),
    }

    for method, response in responses.items():
        # 405 means the resource has no such method at all, for anyone: nothing to leak.
        assert response.status_code in (404, 405), f"{method} {url} -> {response.status_code}"
        if response.status_code == 404:
            assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
    assert model.objects.filter(pk=obj.pk).values().get() == before
    listed = as_charlie.get(f"/api/v1/{prefix}").json()
    assert str(obj.public_id) not in str(listed)


def test_a_missing_object_and_another_accounts_object_look_the_same(alice, charlie, token_client):
    _, key = make_api_key(alice.account)
    as_charlie = token_client(charlie.user, charlie.account)

    theirs = as_charlie.get(f"/api/v1/api-keys/{key.public_id}")
    missing = as_charlie.get("/api/v1/api-keys/00000000-0000-0000-0000-000000000000")
    malformed = as_charlie.get("/api/v1/api-keys/not-a-uuid")

    assert theirs.status_code == missing.status_code == malformed.status_code == 404
    assert theirs.content == missing.content == malformed.content


def test_charlie_gets_404_for_every_page_of_account_a(alice, charlie, client):
    client.force_login(charlie.user)
    for route, pattern in walk():
        if "<slug:account>" not in route or "<str:id>" in route:
            continue
        url = reverse(pattern.name, kwargs={"account": alice.account.slug})
        assert client.get(url).status_code == 404, url
        assert client.post(url, {}).status_code == 404, url


@pytest.mark.parametrize("name,model", sorted(PORTAL_OBJECT_ROUTES.items(), key=lambda item: item[0]))
def test_charlie_gets_404_for_account_a_objects_under_his_own_account(name, model, alice, charlie, client):
    obj = ISOLATION_FACTORIES[model](alice.account)
    before = model.objects.filter(pk=obj.pk).values().get()
    client.force_login(charlie.user)
    url = reverse(name, kwargs={"account": charlie.account.slug, "id": obj.public_id})

    assert client.get(url).status_code == 404
    assert client.post(url, {"role": "owner"}).status_code in (404, 405)  # 405: a page with no form at all
    assert model.objects.filter(pk=obj.pk).values().get() == before
