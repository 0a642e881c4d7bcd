from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from studio.projects.models import Project, Revision


class Build(models.Model):
    """One build of a project revision, from the queue to its outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="builds")
    # The project's own count (1, 2, 3...), for people: "build #4".
    number = models.PositiveIntegerField()
    # RESTRICT, not PROTECT: a revision goes only with its project, and then its builds go too.
    revision = models.ForeignKey(Revision, on_delete=models.RESTRICT, related_name="builds")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="builds"
    )
    target = models.CharField(max_length=128, blank=True, default="")
    build_args = models.JSONField(default=dict, blank=True)
    no_cache = models.BooleanField(default=False)
    # Whose cache index and cache mounts the build used: "user:<id>" (the person's own, as their
    # own Docker would be), "class:<id>" (a class whose teacher chose one shared cache), or ""
    # (the store's own, which builds made before scopes existed used).
    cache_scope = models.CharField(max_length=64, blank=True, default="")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    # When the task was last sent to the workers: a queued build whose message was lost is sent again.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched every few seconds by the task running the build; a stale one means its worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    cache_hits = models.PositiveIntegerField(default=0)
    cache_misses = models.PositiveIntegerField(default=0)
    # How many steps ended with each verdict (builds.engine.verdicts.tally over its events).
    counts = models.JSONField(default=dict, blank=True)
    image_digest = models.CharField(max_length=80, blank=True, default="")
    image_size = models.PositiveBigIntegerField(null=True, blank=True)
    image_layers = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # build.finished's `error` ({message, step, line, file, ...}), or null.
    error = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="build_number_unique")]
        indexes = [models.Index(fields=["project", "status", "id"], name="build_project_status")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"build {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status not in self.ACTIVE


class Step(models.Model):
    """One step of a build: its `step.finished` event as the engine sent it (without `type` and
    `seq`, which say where it stood in the stream), stored once and read back unchanged, and the
    columns steps are looked up by. builds/engine/events.py (StepFinished) declares its fields."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField()  # the event's `step`
    keyword = models.CharField(max_length=32, blank=True, default="")  # a build's FROMs (the inspector)
    event = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build", "number"], name="step_number_unique")]
        ordering = ["build", "number"]

    def __str__(self) -> str:
        return f"step {self.number} of build {self.build_id}"

    # What the pages read of a step, from its event.
    @property
    def status(self) -> str:
        return str(self.event.get("status", ""))

    @property
    def instruction(self) -> str:
        return str(self.event.get("instruction", ""))

    @property
    def line(self) -> int | None:
        return self.event.get("line")

    @property
    def cached(self) -> bool:
        return self.event.get("cached") is True

    @property
    def duration_ms(self) -> int:
        return int(self.event.get("duration_ms") or 0)

    @property
    def cache_key(self) -> str | None:
        return self.event.get("cache_key")

    @property
    def layer(self) -> dict[str, Any] | None:
        return self.event.get("layer")


class BuildEvent(models.Model):
    """Every event of a build, in order, so a late or reconnecting page can replay them."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=32)
    data = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build", "seq"], name="build_event_seq_unique")]
        ordering = ["build", "seq"]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} of build {self.build_id}"
