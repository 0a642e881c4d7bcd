from __future__ import annotations

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
    """One step of a build as its `step.finished` event told it."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField()
    stage = models.CharField(max_length=128)
    instruction = models.TextField()
    line = models.PositiveIntegerField(null=True)
    keyword = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=10)  # cached | built | skipped | failed
    cached = models.BooleanField(default=False)
    cache_key = models.CharField(max_length=80, null=True, blank=True)
    reason = models.JSONField(null=True, blank=True)
    layer = models.JSONField(null=True, blank=True)  # {digest, size, files: {added, modified, deleted}}
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.JSONField(null=True, blank=True)
    # Whatever else the event carried (e.g. `base` for a FROM), so no field of it is lost.
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build", "number"], name="step_number_unique")]
        ordering = ["build", "number"]

    def __str__(self) -> str:
        return f"step {self.number} of build {self.build_id}"


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
