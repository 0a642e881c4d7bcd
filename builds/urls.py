"""The build domain's JSON API, included by studio/urls.py."""

from __future__ import annotations

from django.urls import path

from . import api

urlpatterns = [
    path("api/projects/<int:project_id>/builds/", api.project_builds, name="project-builds"),
    path("api/builds/<int:build_id>/", api.build, name="build"),
    path("api/builds/<int:build_id>/cancel/", api.build_cancel, name="build-cancel"),
    path("api/builds/<int:build_id>/events/", api.build_events, name="build-events"),
]
