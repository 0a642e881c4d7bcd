"""The download's address, included by builds/urls.py."""

from __future__ import annotations

from django.urls import path

from . import download

urlpatterns = [
    path("builds/<int:build_id>/image.tar", download.build_image_download, name="build-image-download"),
]
