from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import accounts, api_root, health, pages, ping
from .routing import optional_patterns

urlpatterns = [
    path("", pages.home, name="home"),
    path("studio/", pages.projects_page, name="projects_page"),
    path("studio/demo/", pages.demo_page, name="studio_demo"),
    path("studio/<int:project_id>/", pages.project_studio, name="project_studio"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/ping/", ping.ping, name="ping"),
    path("api/schema/", api_root.schema, name="api-schema"),
    path("api/", api_root.api.urls),
    path("admin/", admin.site.urls),
    # The build domain's pages and API, once builds/urls.py exists.
    path("", include(optional_patterns("builds.urls", "urlpatterns"))),
    path("", include("studio.classrooms.urls")),
]
