"""Cache scopes on the web: whose cache index and cache mounts a build reads and fills.

Layers are stored once for everyone; the cache index is not. By default each person builds in a
cache of their own ("user:<id>"), so a first build is cold and the next one hits, as with their
own Docker. A teacher can give a class one shared cache ("class:<id>") for a lesson about shared
caches and CI runners; the class's exercise copies then build in it. Builds made before scopes
existed used the store's own ("").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studio.models import User
from studio.projects.models import Project

# Builds come before classrooms and know nothing of them: an app with scopes of its own
# ("class:<id>") registers them when it is ready, with how to choose one for a build and how to
# name it on the pages.
Resolve = Callable[..., str | None]  # (*, project, user) -> "kind:<id>", or None: not this kind
Label = Callable[[str], str]  # the part after "kind:" -> how the pages name the cache


@dataclass(frozen=True)
class _Kind:
    resolve: Resolve
    label: Label


_kinds: dict[str, _Kind] = {}


def register(kind: str, *, resolve: Resolve, label: Label) -> None:
    """Add (or, under the same kind, replace: `ready` may run twice in tests) a kind of scope."""
    _kinds[kind] = _Kind(resolve=resolve, label=label)


def cache_scope_for(*, project: Project, user: User) -> str:
    """The cache scope a build of `project` by `user` uses now: the first registered kind that
    claims the project (a class whose teacher chose a shared cache, for its exercise copies),
    else the person's own."""
    for kind in _kinds.values():
        if (scope := kind.resolve(project=project, user=user)) is not None:
            return scope
    return f"user:{user.pk}"


def cache_scope_json(scope: str) -> dict[str, Any]:
    """A build's cache scope as every page shows it."""
    prefix, _, ident = scope.partition(":")
    if prefix in _kinds:
        return {"kind": prefix, "name": scope, "label": _kinds[prefix].label(ident)}
    if prefix == "user":
        user = User.objects.filter(id=int(ident)).only("username").first() if ident.isdigit() else None
        owner = user.username if user is not None else "a former user"
        return {"kind": "user", "name": scope, "label": f"{owner}'s own cache"}
    return {"kind": "store", "name": scope, "label": "the studio's shared cache (before scopes)"}
