"""The worker's side of a push from the page."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name=services.PUSH_IMAGE, ignore_result=True)
def push_image(push_id: int) -> str:
    """Push one queued ImagePush; what happened is in its row (status, layers, error)."""
    return services.push_run(push_id=push_id)
