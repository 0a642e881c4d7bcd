"""Cache scopes on the web: whose cache index and cache mounts a build reads and fills.

Layers are stored once for everyone; the cache index is not. By default each person builds in a
cache of their own ("user:<id>"), so a first build is cold and the next one hits, as with their
own Docker. A teacher can give a class one shared cache ("class:<id>") for a lesson about shared
caches and CI runners; the class's exercise copies then build in it. Builds made before scopes
existed used the store's own ("").
"""

from __future__ import annotations

from typing import Any

from studio.classrooms.models import Classroom
from studio.models import User
from studio.projects.models import Project


def cache_scope_for(*, project: Project, user: User) -> str:
    """The cache scope a build of `project` by `user` uses now: the class's shared one when the
    project is an exercise copy in a class whose teacher chose a shared cache, else the
    person's own."""
    classroom = Classroom.objects.filter(
        exercises__assignments__project=project, shared_cache=True
    ).only("id").first()
    if classroom is not None:
        return f"class:{classroom.id}"
    return f"user:{user.pk}"


def cache_scope_json(scope: str) -> dict[str, Any]:
    """A build's cache scope as every page shows it."""
    if scope.startswith("class:"):
        classroom = Classroom.objects.filter(id=int(scope[6:])).only("name").first()
        name = classroom.name if classroom is not None else "a class"
        return {"kind": "class", "name": scope, "label": f"cache shared by the class {name}"}
    if scope.startswith("user:"):
        user = User.objects.filter(id=int(scope[5:])).only("username").first()
        owner = user.username if user is not None else "a former user"
        return {"kind": "user", "name": scope, "label": f"{owner}'s own cache"}
    return {"kind": "store", "name": scope, "label": "the studio's shared cache (before scopes)"}
