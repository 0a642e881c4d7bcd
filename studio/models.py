from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower


class User(AbstractUser):
    """A person using the studio. Its own model from the start, because swapping the user model
    after the first migration is a painful migration."""


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
        constraints = [models.UniqueConstraint(fields=["revision", "path"], name="revision_file_path_unique")]
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path


class Classroom(models.Model):
    """A teacher's class. Students join with its code; a closed class takes no new students and
    its exercise copies can no longer be changed or built, but everything stays readable."""

    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classrooms"
    )
    name = models.CharField(max_length=100)
    join_code = models.CharField(max_length=16, unique=True)
    # A project of the teacher's that every student of the class may look at (not change).
    shared_project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    # The class's exercise copies build in one cache the whole class shares ("class:<id>"), for
    # a lesson about shared caches and CI runners; otherwise each student builds in their own.
    shared_cache = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


class Membership(models.Model):
    """A student in a class, under the name the class sees. Removing a student keeps the row
    (with `removed_at`), so the same account cannot simply join again with the code."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    display_name = models.CharField(max_length=60)
    joined_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["classroom", "student"], name="membership_unique_per_class"),
            # Names are told apart as people read them: "Ana" and "ana" are one name in a class.
            models.UniqueConstraint(
                F("classroom"), Lower("display_name"), name="membership_name_unique_per_class"
            ),
        ]
        ordering = ["display_name", "id"]

    def __str__(self) -> str:
        return f"{self.display_name} in {self.classroom_id}"


class Exercise(models.Model):
    """A starter project handed out to a class, frozen as the revision it was when handed out,
    with the checks every student's builds are held to."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="exercises")
    title = models.CharField(max_length=100)
    instructions = models.TextField(blank=True, default="")
    # The starter's files; gone only when the teacher deletes the project it came from, after
    # which students joining later get no copy (those made earlier are theirs).
    starter = models.ForeignKey(Revision, on_delete=models.SET_NULL, null=True, related_name="+")
    # [{"kind": ..., ...}] as studio/classrooms/checks.py reads them.
    checks = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class Assignment(models.Model):
    """A student's own copy of an exercise: a project the student owns, and how its builds fare
    against the exercise's checks."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="assignments")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="assignments")
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="assignment")
    # One result per check, in the exercise's order: {status: pass|fail|not_yet, message, build}.
    results = models.JSONField(default=list, blank=True)
    # The number of the copy's last build the checks were held to.
    judged_build = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["exercise", "membership"], name="assignment_unique_per_student")
        ]
        ordering = ["exercise", "membership"]

    def __str__(self) -> str:
        return f"{self.exercise_id}/{self.membership_id}"
