"""Reading projects, with the one rule of who may see what."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from studio.errors import Rejected
from studio.models import User
from studio.projects.models import Project, ProjectFile

from . import access

AnyUser = User | AnonymousUser


def project_can_view(*, user: AnyUser, project: Project, token: str | None = None) -> bool:
    """The owner, anyone signed in when the project is public, whoever holds its share link, and
    whoever an app built on projects lets in (a teacher for a student's exercise copy, a class for
    the project its teacher shares with it: access.py). Nobody who is not signed in."""
    if not user.is_authenticated:
        return False
    if project.owner_id == user.pk or project.visibility == Project.Visibility.PUBLIC:
        return True
    if token and project.share_token and secrets.compare_digest(project.share_token, token):
        return True
    return access.granted(user=user, project=project)


def project_get(*, user: AnyUser, project_id: int, token: str | None = None, write: bool = False) -> Project:
    """The project, when `user` may see it (and change it, with `write`). One who may not see it
    hears that it does not exist, as for a project that really does not."""
    project = Project.objects.select_related("owner").filter(id=project_id).first()
    if project is None or not project_can_view(user=user, project=project, token=token):
        raise Http404(f"project {project_id} not found")
    if write and project.owner_id != user.pk:
        raise Rejected("only the project's owner may change it or build it", kind="forbidden")
    if write and (reason := access.frozen_because(project=project)) is not None:
        raise Rejected(reason, kind="forbidden")
    return project


def project_list(*, user: User) -> QuerySet[Project]:
    return Project.objects.filter(owner=user)


def project_files(*, project: Project) -> QuerySet[ProjectFile]:
    return ProjectFile.objects.filter(project=project).select_related("blob").defer("blob__data")


def project_file_get(*, project: Project, path: str) -> ProjectFile:
    found = ProjectFile.objects.filter(project=project, path=path).select_related("blob").first()
    if found is None:
        raise Http404(f"the project has no file {path}")
    return found
