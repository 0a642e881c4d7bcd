"""The build domain's JSON API and its comparison pages, included by studio/urls.py."""

from __future__ import annotations

from django.urls import path

from . import api, compare_views, images_api

urlpatterns = [
    path("api/projects/<int:project_id>/builds/", api.project_builds, name="project-builds"),
    path("api/projects/<int:project_id>/plan/", api.project_plan, name="project-plan"),
    path("api/projects/<int:project_id>/lint/", api.project_lint, name="project-lint"),
    path("api/builds/<int:build_id>/", api.build, name="build"),
    path("api/builds/<int:build_id>/steps/<int:number>/", api.build_step, name="build-step"),
    path("api/builds/<int:build_id>/cancel/", api.build_cancel, name="build-cancel"),
    path("api/builds/<int:build_id>/events/", api.build_events, name="build-events"),
    path("api/images/df/", images_api.images_df, name="images-df"),
    path("api/compare/<int:a_id>/<int:b_id>/", compare_views.compare, name="compare"),
    path("api/compare/<int:a_id>/<int:b_id>/row/", compare_views.compare_row, name="compare-row"),
    path("compare/", compare_views.compare_picker, name="compare-picker"),
    path("compare/<int:a_id>/<int:b_id>/", compare_views.compare_page, name="compare-page"),
]
