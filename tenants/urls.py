from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.portal_home, name="portal-home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(template_name="tenants/password_change.html"),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="tenants/password_change_done.html"),
        name="password_change_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(template_name="tenants/password_set.html"),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="tenants/password_set_done.html"),
        name="password_reset_complete",
    ),
    path("a/<slug:account>/", views.DashboardView.as_view(), name="dashboard"),
    path("a/<slug:account>/members/", views.MemberListView.as_view(), name="member-list"),
    path("a/<slug:account>/members/add/", views.MemberAddView.as_view(), name="member-add"),
    path("a/<slug:account>/members/<str:id>/edit/", views.MemberEditView.as_view(), name="member-edit"),
    path("a/<slug:account>/members/<str:id>/remove/", views.MemberRemoveView.as_view(), name="member-remove"),
    path("a/<slug:account>/api-keys/", views.ApiKeyListView.as_view(), name="apikey-list"),
    path("a/<slug:account>/api-keys/new/", views.ApiKeyCreateView.as_view(), name="apikey-create"),
    path("a/<slug:account>/api-keys/<str:id>/", views.ApiKeyDetailView.as_view(), name="apikey-detail"),
    path("a/<slug:account>/api-keys/<str:id>/revoke/", views.ApiKeyRevokeView.as_view(), name="apikey-revoke"),
    path("a/<slug:account>/audit-log/", views.AuditLogView.as_view(), name="audit-log"),
]
