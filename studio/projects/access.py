"""Who else may see a project, and what may keep its owner from changing it, as told by the apps
built on projects (classrooms: a teacher sees the students' copies, a closed class freezes them).

Projects come first and know nothing of those apps: each registers a `Grant` when it is ready
(`AppConfig.ready`), and the projects' one rule of who sees what (`selectors.project_can_view`)
asks every grant registered."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.db.models import Q

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from studio.models import User

    from .models import Project


class Grant(Protocol):
    def may_view(self, *, user: User, project: Project) -> bool:
        """Whether `user` (signed in, neither the owner nor holding a share link) may see it."""
        ...

    def viewable(self, *, user: User) -> Q:
        """The projects `may_view` lets `user` see, as a filter on projects (for lists)."""
        ...

    def frozen(self, *, project: Project) -> str | None:
        """Why the owner may no longer change or build the project, or None."""
        ...


_grants: dict[str, Grant] = {}


def register(name: str, grant: Grant) -> None:
    """Add (or, under the same name, replace: `ready` may run twice in tests) a grant."""
    _grants[name] = grant


def granted(*, user: User | AnonymousUser, project: Project) -> bool:
    if not user.is_authenticated:
        return False
    return any(grant.may_view(user=user, project=project) for grant in _grants.values())


def granted_projects(*, user: User) -> Q:
    """A filter for the projects some grant lets `user` see; it matches none when none does."""
    found = Q(pk__in=[])
    for grant in _grants.values():
        found |= grant.viewable(user=user)
    return found


def frozen_because(*, project: Project) -> str | None:
    for grant in _grants.values():
        if (reason := grant.frozen(project=project)) is not None:
            return reason
    return None
