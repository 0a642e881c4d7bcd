"""The classrooms' own models: a teacher's class, its students, the exercises handed out and each
student's copy. They lived in the `studio` app until it became only the shell; their tables keep
the names they had there (`db_table`), so moving them changed no row."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower

from studio.projects.models import Project, Revision


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
        db_table = "studio_classroom"
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
        db_table = "studio_membership"
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
    # The lesson of the studio's pack it was handed out from (studio/classrooms/lessons/<slug>),
    # "" for a teacher's own; the title, text and checks may have been edited since.
    lesson = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "studio_exercise"
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
    # The number of the build whose checks a worker is running now (their own builds take a
    # while): the copy reads "checking…" until they are done, not the last build's verdicts.
    checking_build = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "studio_assignment"
        constraints = [
            models.UniqueConstraint(fields=["exercise", "membership"], name="assignment_unique_per_student")
        ]
        ordering = ["exercise", "membership"]

    def __str__(self) -> str:
        return f"{self.exercise_id}/{self.membership_id}"


class Prediction(models.Model):
    """Before a build, a student marks the steps they think will rebuild; the next build of their
    copy grades each step, with the engine's reason for what really happened."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="predictions")
    # The step numbers the student expects to rebuild (not come from the cache).
    rebuild = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when a build graded it: that build's number, and per step
    # {step, instruction, predicted, rebuilt, correct, reason}.
    build_number = models.PositiveIntegerField(null=True, blank=True)
    grades = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"prediction {self.id} of {self.assignment_id}"
