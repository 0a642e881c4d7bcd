"""The build domain's comparison pages, included by studio/urls.py (its JSON API is builds/api.py's
router, on studio/api_root.py's API)."""

from __future__ import annotations

from django.urls import include, path

from . import compare_views, imagebytes_views, imagelab_views

urlpatterns = [
    path("compare/", compare_views.compare_picker, name="compare-picker"),
    path("compare/<int:a_id>/<int:b_id>/", compare_views.compare_page, name="compare-page"),
    path("images/", imagelab_views.images_page, name="images-page"),
    path("images/squash/", imagelab_views.images_squash, name="images-squash"),
    path("builds/<int:build_id>/bytes/", imagebytes_views.bytes_page, name="build-bytes"),
    path("builds/<int:build_id>/bytes/measure/", imagebytes_views.bytes_measure, name="build-bytes-measure"),
    path("", include("builds.takehome.urls")),
]
