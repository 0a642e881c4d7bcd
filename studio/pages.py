"""The studio's plain pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "studio/home.html")


def studio_page(request: HttpRequest) -> HttpResponse:
    """The layer-stack page; its script replays a recording or follows a build's socket."""
    return render(request, "studio/studio_page.html")
