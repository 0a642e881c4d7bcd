"""The projects' own models: a Dockerfile and its build context, its files' contents, and the
revisions builds saw. They lived in the `studio` app until it became only the shell; their tables
keep the names they had there (`db_table`), so moving them changed no row."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Project(models.Model):
    """A Dockerfile and its build context, owned by one person."""

    class Visibility(models.TextChoices):
        PRIVATE = "private"  # the owner, and whoever holds the share link
        PUBLIC = "public"  # anyone signed in may look; still only the owner changes or builds

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    dockerfile_path = models.CharField(max_length=255, default="Dockerfile")
    # Who holds the link `?token=...` may look at the project and its builds; empty means no link.
    share_token = models.CharField(max_length=64, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "studio_project"
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="project_name_unique_per_owner")
        ]
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.owner_id}/{self.name}"


class Blob(models.Model):
    """A file's content, stored once however many files and revisions hold it."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    data = models.BinaryField()

    class Meta:
        db_table = "studio_blob"

    def __str__(self) -> str:
        return f"sha256:{self.sha256[:12]} ({self.size} bytes)"


class ProjectFile(models.Model):
    """A file of a project as it is now: the Dockerfile or any file of the context."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1024)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    mode = models.PositiveIntegerField(default=0o644)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "studio_projectfile"
        constraints = [models.UniqueConstraint(fields=["project", "path"], name="project_file_path_unique")]
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path


class Revision(models.Model):
    """The project's Dockerfile and files as one build saw them. Never changed: two builds of the
    same content share a revision, so any build can be rebuilt or compared with another."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="revisions")
    # sha256 over the sorted (path, mode, content digest) rows and the Dockerfile's path.
    digest = models.CharField(max_length=64)
    dockerfile_path = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "studio_revision"
        constraints = [
            models.UniqueConstraint(fields=["project", "digest"], name="revision_digest_unique_per_project")
        ]

    def __str__(self) -> str:
        return f"{self.project_id}@{self.digest[:12]}"


class RevisionFile(models.Model):
    revision = models.ForeignKey(Revision, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1024)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    mode = models.PositiveIntegerField()

    class Meta:
        db_table = "studio_revisionfile"
        constraints = [models.UniqueConstraint(fields=["revision", "path"], name="revision_file_path_unique")]
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path
