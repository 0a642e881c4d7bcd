from __future__ import annotations

from django.conf import settings
from django.db import models

from builds.models import Build


class ImagePush(models.Model):
    """One push of a build's image to the studio's push registry, and its per-layer report."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="pushes")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="image_pushes"
    )
    # The full reference pushed to ("host:5000/prefix/app:tag"); the person chose only the
    # repository under the prefix and the tag.
    reference = models.CharField(max_length=400)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # One entry per image layer, bottom first: {digest, size, status, current, source?}; status
    # waiting, uploading, pushed, exists or mounted.
    layers = models.JSONField(default=list, blank=True)
    uploaded = models.PositiveBigIntegerField(default=0)
    manifest_digest = models.CharField(max_length=80, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched by the pushing worker every STUDIO_BUILD_HEARTBEAT_S: a running push silent for
    # STUDIO_BUILD_STALE_AFTER_S lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"push {self.id} of build {self.build_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status not in self.ACTIVE
