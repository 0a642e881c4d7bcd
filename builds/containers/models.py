"""A container's state, kept in the database: what it runs, how far it got, what it left."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from builds.models import Build


class Container(models.Model):
    """One run of a finished build's image, from the queue to its removal."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        EXITED = "exited"  # ran; its writable layer is there to read, commit or remove
        FAILED = "failed"  # could not run, or its worker died under it: no layer to show
        # Its worker (the one whose store holds the layer) is making the image; heartbeat_at is
        # set once that worker has taken the commit, and then kept fresh until it is stored.
        COMMITTING = "committing"
        COMMITTED = "committed"  # its layer became an image's top layer
        REMOVED = "removed"  # its layer is gone

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    BUSY = (*ACTIVE, Status.COMMITTING)  # its layer is in use: neither removed nor committed again

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="containers")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="containers")
    cmd = models.JSONField(default=list, blank=True)  # replaces the image's CMD when not empty
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # The engine's name for it in the store (builds.engine.container): set when a worker makes it.
    engine_id = models.CharField(max_length=32, blank=True, default="")
    # The Celery node it is sent to (the build's, while that one lives) and then the one that ran
    # it: its store holds the writable layer, so it commits and removes it too (by its own queue,
    # builds.locality.queue_for).
    worker = models.CharField(max_length=255, blank=True, default="")
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    commit_requested_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True, default="")  # why it stopped, when not by itself
    output = models.TextField(blank=True, default="")  # its latest output, capped
    output_chars = models.PositiveBigIntegerField(default=0)  # all it printed, kept or not
    diff = models.JSONField(null=True, blank=True)  # builds.engine.container.Diff.to_json()
    committed_image = models.JSONField(null=True, blank=True)  # {digest, layer: {...}} after a commit

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["owner", "status"], name="container_owner_status")]

    def __str__(self) -> str:
        return f"container {self.id} ({self.status})"
