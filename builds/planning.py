"""The engine's planner over a project's saved files: what the next build would serve from the cache
and what it would rebuild, asked on every pause in typing.

The planner reads a context directory, so each project keeps one on disk under
VAR_DIR/plans/<project id>/context, brought up to date before each prediction: only files whose
content or mode changed are written, so the stat -> sha256 cache (kept beside it) still knows the
digests of all the others, and a prediction over an unchanged context hashes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from builds.engine.context import HashCache
from builds.engine.planner import BuildOptions
from builds.engine.predict import predict
from builds.stores import web_store
from studio.errors import Rejected
from studio.models import User
from studio.projects.files import check_file_size, check_tree
from studio.projects.models import Blob, Project, ProjectFile

from .scopes import cache_scope_for
from .services import _clean_options

Files = dict[str, list[Any]]  # path -> [content sha256, mode]


def plan_dir(project_id: int) -> Path:
    return settings.VAR_DIR / "plans" / str(project_id)


def forget_project(sender: type[Project], instance: Project, **kwargs: Any) -> None:
    """A deleted project's files go from the planner's directory too, once the deletion is committed."""
    where = plan_dir(instance.pk)
    transaction.on_commit(lambda: shutil.rmtree(where, ignore_errors=True))


def project_predict(
    *,
    project: Project,
    user: User | None = None,
    dockerfile: str | None = None,
    target: object = "",
    build_args: object = None,
    no_cache: object = False,
) -> dict[str, Any]:
    """The planner's verdict for every step of building `project` now, with `dockerfile` as the
    text of its Dockerfile when given (what the person is typing; the next build will have it).
    Options are checked as for a build (Rejected names the field); a Dockerfile that does not
    parse, an unknown base image or target, a missing COPY source come back as `error`."""
    target, args, no_cache = _clean_options(target, build_args if build_args is not None else {}, no_cache)
    path = project.dockerfile_path
    override = None
    if dockerfile is not None:
        override = dockerfile.encode("utf-8", "surrogatepass")
        check_file_size(path, len(override))
    root = plan_dir(project.id)
    with _locked(root):
        context = root / "context"
        text = _sync_afresh_if_broken(project, context, root / "files.json", override)
        if text is None:
            return {"steps": [], "error": {"message": f"the project has no {path} yet", "line": None}}
        try:
            source = text.decode("utf-8")
        except UnicodeDecodeError:
            return {"steps": [], "error": {"message": f"{path} is not UTF-8 text", "line": None}}
        options = BuildOptions(
            context=context,
            dockerfile=context / path,
            dockerfile_text=source,
            target=target or None,
            build_args=args,
            no_cache=no_cache,
            # Reasons compare with this project's earlier builds, as its real builds' do.
            history_id=f"project:{project.id}",
            limits=settings.BUILD_LIMITS,
            # The cache a build by this person would use now: a prediction reads no other.
            cache_scope=cache_scope_for(project=project, user=user or project.owner),
        )
        found = predict(web_store(), options, hash_cache=HashCache(root / "hashcache"))
    return found.to_json()


def saved_dockerfile(*, project: Project) -> str:
    """The text of the project's saved Dockerfile; Rejected naming the file when there is none."""
    path = project.dockerfile_path
    found = ProjectFile.objects.filter(project=project, path=path).select_related("blob").first()
    if found is None:
        raise Rejected(f"the project has no {path} yet", file=path)
    try:
        return bytes(found.blob.data).decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"{path} is not UTF-8 text", file=path) from None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One prediction per project at a time across the web's processes: they share the directory."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sync_afresh_if_broken(
    project: Project, context: Path, record: Path, override: bytes | None
) -> bytes | None:
    """`_sync`, started again from an empty directory when the one on disk cannot be brought up to
    date (changed behind the planner's back, or left by an older studio with a file where a
    folder must go): the directory is only ever a cache of the database."""
    try:
        return _sync(project, context, record, override)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            record.unlink()
        shutil.rmtree(context, ignore_errors=True)
        return _sync(project, context, record, override)


def _sync(project: Project, context: Path, record: Path, override: bytes | None) -> bytes | None:
    """Make `context` hold the project's files (the Dockerfile's text replaced by `override`), and
    return the Dockerfile's content (None when the project has none). `record` lists what the
    directory holds; it is removed while the directory changes, so after a crash the next call
    starts again from an empty directory rather than trust a half-done one."""
    rows = list(ProjectFile.objects.filter(project=project).values_list("path", "mode", "blob_id"))
    wanted: Files = {path: [blob, mode] for path, mode, blob in rows}
    dockerfile = project.dockerfile_path
    if override is not None:
        wanted[dockerfile] = [hashlib.sha256(override).hexdigest(), wanted.get(dockerfile, [None, 0o644])[1]]
    # A path both file and folder cannot be written (the typed Dockerfile's among them): refused naming it.
    check_tree(wanted)
    have = _read_record(record)
    if have is None:
        shutil.rmtree(context, ignore_errors=True)
        have = {}
    if have != wanted:
        with contextlib.suppress(FileNotFoundError):
            record.unlink()
        _write_changes(context, have, wanted, override, dockerfile)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(wanted))
        os.replace(tmp, record)
    if dockerfile not in wanted:
        return None
    return override if override is not None else (context / dockerfile).read_bytes()


def _read_record(record: Path) -> Files | None:
    try:
        found = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _write_changes(
    context: Path, have: Files, wanted: Files, override: bytes | None, dockerfile: str
) -> None:
    context.mkdir(parents=True, exist_ok=True)
    root = context.resolve()
    for path in sorted(set(have) - set(wanted)):
        target = root / path
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        _prune(target.parent, root)
    changed = [path for path, entry in wanted.items() if have.get(path) != entry]
    new_content = [path for path in changed if have.get(path, [None])[0] != wanted[path][0]]
    typed = dockerfile if override is not None else None
    # Only the contents that changed are read from the database.
    fetch = {wanted[path][0] for path in new_content if path != typed}
    data = dict(Blob.objects.filter(sha256__in=fetch).values_list("sha256", "data"))
    for path in changed:
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise Rejected(f"the project holds a path outside its context: {path!r}", file=path)
        if path in new_content:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(
                override if path == typed and override is not None else bytes(data[wanted[path][0]])
            )
        target.chmod(wanted[path][1])


def _prune(directory: Path, root: Path) -> None:
    """Remove directories left empty up to `root`: a build's context has no such directories."""
    while directory != root and directory.is_relative_to(root):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
