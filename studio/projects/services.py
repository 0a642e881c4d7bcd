"""Changing projects and their files, and snapshotting them into revisions."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum

from studio.errors import Rejected
from studio.models import User
from studio.projects.models import Blob, Project, ProjectFile, Revision, RevisionFile

from .files import Entry, check_file_size, check_totals, check_tree, clash, clean_path, file_mode

STARTER_DOCKERFILE = """\
FROM busybox:latest
WORKDIR /app
COPY . .
RUN echo "hello from Dockerfile Studio" > greeting.txt
CMD ["cat", "greeting.txt"]
"""
MAX_NAME = 100


def _clean_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Rejected("name must be a non-empty string", field="name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise Rejected(f"name may be at most {MAX_NAME} characters", field="name")
    return name


def _clean_visibility(visibility: object) -> str:
    if visibility not in Project.Visibility.values:
        allowed = " or ".join(Project.Visibility.values)
        raise Rejected(f"visibility must be {allowed}", field="visibility")
    return str(visibility)


def blob_put(*, data: bytes) -> Blob:
    """The blob holding `data`, stored once: the same content in any file of any project or
    revision is one row."""
    digest = hashlib.sha256(data).hexdigest()
    blob = Blob.objects.filter(sha256=digest).only("sha256", "size").first()
    if blob is not None:
        return blob
    try:
        with transaction.atomic():
            return Blob.objects.create(sha256=digest, size=len(data), data=data)
    except IntegrityError:  # stored by someone else meanwhile: the same bytes, so theirs is ours
        return Blob.objects.only("sha256", "size").get(sha256=digest)


@transaction.atomic
def project_create(
    *,
    owner: User,
    name: object,
    visibility: object = Project.Visibility.PRIVATE,
    dockerfile: str | None = None,
) -> Project:
    """A new project of `owner`, with a Dockerfile (a small starter one unless given)."""
    name = _clean_name(name)
    if Project.objects.filter(owner=owner).count() >= settings.PROJECTS_PER_USER:
        raise Rejected(
            f"you already have {settings.PROJECTS_PER_USER} projects, the most one person may have "
            "(STUDIO_PROJECTS_PER_USER)",
            kind="too_many",
            limit="projects_per_user",
            max=settings.PROJECTS_PER_USER,
        )
    if Project.objects.filter(owner=owner, name=name).exists():
        raise Rejected(f"you already have a project called {name!r}", kind="conflict", field="name")
    project = Project.objects.create(owner=owner, name=name, visibility=_clean_visibility(visibility))
    text = STARTER_DOCKERFILE if dockerfile is None else dockerfile
    project_file_put(project=project, path=project.dockerfile_path, data=text.encode())
    return project


@transaction.atomic
def project_update(
    *, project: Project, name: object = None, visibility: object = None, dockerfile_path: object = None
) -> Project:
    """Rename the project, change who may see it, or point it at another Dockerfile."""
    if name is not None:
        name = _clean_name(name)
        if Project.objects.filter(owner=project.owner, name=name).exclude(id=project.id).exists():
            raise Rejected(f"you already have a project called {name!r}", kind="conflict", field="name")
        project.name = name
    if visibility is not None:
        project.visibility = _clean_visibility(visibility)
    if dockerfile_path is not None:
        project.dockerfile_path = clean_path(dockerfile_path, field="dockerfile_path")
    project.save()
    return project


def project_share(*, project: Project) -> str:
    """A new share link token for the project; an earlier link stops working."""
    project.share_token = secrets.token_urlsafe(24)
    project.save(update_fields=["share_token", "updated_at"])
    return project.share_token


def project_unshare(*, project: Project) -> None:
    project.share_token = ""
    project.save(update_fields=["share_token", "updated_at"])


def project_delete(*, project: Project) -> None:
    """Delete the project with its files, revisions and builds (the builds domain stops any that
    are still running when it hears of the deletion)."""
    project.delete()


def _usage(project: Project, *, without: Iterable[str] = ()) -> tuple[int, int]:
    files = ProjectFile.objects.filter(project=project).exclude(path__in=list(without))
    total = files.aggregate(size=Sum("blob__size"))["size"] or 0
    return files.count(), int(total)


@transaction.atomic
def project_file_put(*, project: Project, path: object, data: bytes, mode: int | None = None) -> ProjectFile:
    """Create or replace one file, within the project's limits."""
    path = clean_path(path, field="path")
    check_file_size(path, len(data))
    _check_fits(project, path)
    count, size = _usage(project, without=[path])
    check_totals(count + 1, size + len(data))
    blob = blob_put(data=data)
    existing = ProjectFile.objects.filter(project=project, path=path).first()
    if existing is None:
        return ProjectFile.objects.create(
            project=project, path=path, blob=blob, mode=file_mode(mode if mode is not None else 0o644)
        )
    existing.blob = blob
    if mode is not None:
        existing.mode = file_mode(mode)
    existing.save()
    project.save(update_fields=["updated_at"])
    return existing


def _check_fits(project: Project, path: str) -> None:
    """Refuse (409) a file where the project has a folder, or inside one of its files: the files
    are a tree, as the directory a build copies them into must be."""
    parts = path.split("/")
    ancestors = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
    mine = ProjectFile.objects.filter(project=project)
    parent = mine.filter(path__in=ancestors).values_list("path", flat=True).first()
    if parent is not None:
        raise clash(parent, path)
    inside = mine.filter(path__startswith=path + "/").values_list("path", flat=True).first()
    if inside is not None:
        raise clash(path, inside)


def project_file_delete(*, project: Project, path: str) -> None:
    deleted, _ = ProjectFile.objects.filter(project=project, path=clean_path(path, field="path")).delete()
    if not deleted:
        raise Rejected(f"the project has no file {path}", kind="not_found", file=path)
    project.save(update_fields=["updated_at"])


@transaction.atomic
def project_files_upload(*, project: Project, entries: list[Entry], replace: bool) -> list[ProjectFile]:
    """Put every file of an uploaded context in the project. With `replace`, the upload is the
    whole context: files it does not hold are removed."""
    uploaded = {entry.path for entry in entries}
    if replace:
        count, size = 0, 0
        check_tree(uploaded)
    else:
        count, size = _usage(project, without=uploaded)
        staying = ProjectFile.objects.filter(project=project).values_list("path", flat=True)
        check_tree(uploaded, beside=staying)
    check_totals(count + len(entries), size + sum(len(entry.data) for entry in entries))
    if replace:
        ProjectFile.objects.filter(project=project).exclude(path__in=uploaded).delete()
    for entry in entries:
        blob = blob_put(data=entry.data)
        ProjectFile.objects.update_or_create(
            project=project, path=entry.path, defaults={"blob": blob, "mode": entry.mode}
        )
    project.save(update_fields=["updated_at"])
    return list(ProjectFile.objects.filter(project=project, path__in=uploaded).select_related("blob"))


def revision_digest(dockerfile_path: str, rows: Iterable[tuple[str, int, str]]) -> str:
    """sha256 over the Dockerfile's path and every (path, mode, content sha256), in path order."""
    canonical = json.dumps(
        {"dockerfile": dockerfile_path, "files": sorted(rows)}, separators=(",", ":"), sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@transaction.atomic
def revision_snapshot(*, project: Project) -> Revision:
    """The project's files as they are now, as an immutable revision: the one already made for the
    same content, or a new one."""
    rows = list(ProjectFile.objects.filter(project=project).values_list("path", "mode", "blob_id"))
    if not any(path == project.dockerfile_path for path, _, _ in rows):
        raise Rejected(
            f"the project has no {project.dockerfile_path} to build",
            field="dockerfile_path",
            file=project.dockerfile_path,
        )
    # Files saved before the studio kept them a tree could hold a path as both file and folder;
    # such a context cannot be written to a directory, so it is refused here, naming the path.
    check_tree(path for path, _, _ in rows)
    digest = revision_digest(project.dockerfile_path, rows)
    revision, created = Revision.objects.get_or_create(
        project=project, digest=digest, defaults={"dockerfile_path": project.dockerfile_path}
    )
    if created:
        RevisionFile.objects.bulk_create(
            [RevisionFile(revision=revision, path=path, mode=mode, blob_id=blob) for path, mode, blob in rows]
        )
    return revision


def _clash(existing: set[str], path: str) -> tuple[str, str] | None:
    """Why `path` cannot be added beside `existing` (and the path in its way): the same name is
    taken, a file stands where `path` needs a folder, or a folder where `path` would be a file."""
    if path in existing:
        return f"{path} already exists", path
    parts = path.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if parent in existing:
            return f"{parent} is a file, so it cannot hold {path}", parent
    inside = next((p for p in existing if p.startswith(path + "/")), None)
    if inside is not None:
        return f"{path} is already a folder (it holds {inside})", inside
    return None


@transaction.atomic
def project_files_move(*, project: Project, source: object, target: object) -> list[ProjectFile]:
    """Rename a file, or move a folder with every file under it. Nothing is overwritten: a name
    already taken is refused, naming it. Moving the Dockerfile moves the project's pointer to it."""
    source = clean_path(source, field="from")
    target = clean_path(target, field="to")
    files = list(ProjectFile.objects.filter(project=project))
    single = next((f for f in files if f.path == source), None)
    moving = [single] if single else [f for f in files if f.path.startswith(source + "/")]
    if not moving:
        raise Rejected(f"the project has no file or folder {source}", kind="not_found", file=source)
    if target == source or target.startswith(source + "/"):
        raise Rejected(f"{source} cannot be moved into itself", field="to")
    renamed = {f.path: target if single else target + f.path[len(source) :] for f in moving}
    staying = {f.path for f in files} - set(renamed)
    for new in renamed.values():
        clean_path(new, field="to")  # the depth and length limits hold for every moved file
        clash = _clash(staying, new)
        if clash is not None:
            raise Rejected(clash[0], kind="conflict", file=clash[1], field="to")
    for found in moving:
        if found.path == project.dockerfile_path:
            project.dockerfile_path = renamed[found.path]
        found.path = renamed[found.path]
        found.save(update_fields=["path", "updated_at"])
    project.save(update_fields=["dockerfile_path", "updated_at"])
    return moving
