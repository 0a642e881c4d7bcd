"""The store's base images and how their layers are shared, for the studio's page to draw.

The store is one for the whole studio: its tagged images are the base images every build
starts from (seeded, imported, or pulled by a FROM); builds made over the web are not tagged.
So any signed-in person may see them; nobody's projects or builds show here.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from studio.api import api_view

from .engine.image.usage import disk_usage
from .engine.store import Store


@api_view(("GET",))
def images_df(request: HttpRequest) -> JsonResponse:
    return JsonResponse(disk_usage(Store(settings.STUDIO_DATA_DIR)).to_json())
