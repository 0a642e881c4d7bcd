"""What classrooms tell the apps below them, which cannot ask (they do not import classrooms):
who sees a project through a class and when a class freezes a copy (projects), and the cache a
class shares (builds). Registered by ClassroomsConfig.ready."""

from __future__ import annotations

from django.db.models import Q

from builds import scopes
from studio.models import User
from studio.projects import access
from studio.projects.models import Project

from .models import Classroom
from .selectors import classroom_can_view_project, project_closed_class


class ClassroomGrant:
    """A class's teacher sees the copies of the students still in it; its students see the
    project the teacher shares with it; a closed class's copies are read-only."""

    def may_view(self, *, user: User, project: Project) -> bool:
        return classroom_can_view_project(user=user, project=project)

    def viewable(self, *, user: User) -> Q:
        taught = Q(
            assignment__membership__classroom__teacher=user, assignment__membership__removed_at__isnull=True
        )
        classes = Classroom.objects.filter(memberships__student=user, memberships__removed_at__isnull=True)
        return taught | Q(id__in=classes.values("shared_project"))

    def frozen(self, *, project: Project) -> str | None:
        closed = project_closed_class(project=project)
        if closed is None:
            return None
        return (
            f"the class {closed.name!r} is closed: this exercise can still be read, "
            "no longer changed or built"
        )


def class_scope(*, project: Project, user: User) -> str | None:
    """An exercise copy in a class whose teacher chose one shared cache builds in "class:<id>"."""
    classroom = Classroom.objects.filter(
        exercises__assignments__project=project, shared_cache=True
    ).only("id").first()
    return f"class:{classroom.id}" if classroom is not None else None


def class_scope_label(ident: str) -> str:
    classroom = Classroom.objects.filter(id=int(ident)).only("name").first() if ident.isdigit() else None
    name = classroom.name if classroom is not None else "a class"
    return f"cache shared by the class {name}"


def register() -> None:
    access.register("classrooms", ClassroomGrant())
    scopes.register("class", resolve=class_scope, label=class_scope_label)
