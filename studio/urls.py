from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import accounts, health, openapi, pages, ping
from .projects import api as projects
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
    path("api/schema/", openapi.schema, name="api-schema"),
    path("api/projects/", projects.projects, name="projects"),
    path("api/projects/<int:project_id>/", projects.project, name="project"),
    path("api/projects/<int:project_id>/share/", projects.project_share, name="project-share"),
    path("api/projects/<int:project_id>/files/", projects.project_files, name="project-files"),
    path("api/projects/<int:project_id>/files/<path:path>", projects.project_file, name="project-file"),
    path("api/projects/<int:project_id>/files-move/", projects.project_files_move, name="project-files-move"),
    path("api/projects/<int:project_id>/context/", projects.project_context, name="project-context"),
    path("admin/", admin.site.urls),
    # The build domain's pages and API, once builds/urls.py exists.
    path("", include(optional_patterns("builds.urls", "urlpatterns"))),
    path("", include("studio.classrooms.urls")),
]
