"""RUN --mount: what each mount adds to the step's cache key, and the directories it mounts.

Keyed as BuildKit keys an exec's mounts: every mount's type, target and read-only flag; a bind
mount by the content of what it binds (so a rebuilt stage whose files came out the same keeps
the RUN cached); a cache mount by its id, sharing and the owner and mode it is made with, never
by what it holds; a tmpfs by its size. A cache mount is a directory of the build's cache scope
(the store's mounts/, or scopes/<h>/mounts/), shared by every build of that scope that names
the same id, never by another scope's, and never part of a layer. Binds are read-only
unless `rw`, and then what the command writes there is thrown away, as in BuildKit.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..sandbox import Mount
from ..store.cacheindex import DEFAULT_SCOPE
from .fs import Item, Placer, copy_tree

if TYPE_CHECKING:
    from ..store import Store

TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?", re.IGNORECASE)
_KEYS = ("type", "from", "source", "src", "target", "dst", "destination", "readonly", "ro", "readwrite", "rw",
         "id", "sharing", "mode", "uid", "gid", "size", "required", "env")


class MountError(ValueError):
    """A --mount that cannot be used; the message names what is wrong."""


@dataclass(frozen=True)
class MountSpec:
    type: str
    target: str  # absolute, normalised
    source: str  # normalised, relative to `from` ("" for its root)
    from_: str | None  # stage or image name; None: the build context (bind) or nothing (cache)
    readonly: bool
    id: str  # cache: defaults to the target
    sharing: str
    mode: int | None
    uid: int | None
    gid: int | None
    size: int | None  # tmpfs bytes
    required: bool = False  # secret, ssh: fail when the builder cannot give it


def _bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _number(key: str, value: str, base: int) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise MountError(f"invalid value {value} for {key}") from None


def _size(value: str) -> int:
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise MountError(f"invalid value for size: {value}")
    number, unit = match.groups()
    return int(float(number) * 1024 ** "bkmgtp".index((unit or "b").lower()))


def parse(text: str, *, workdir: str, expand: Callable[[str], str]) -> MountSpec:
    """One --mount value ("type=cache,target=/root/.cache,sharing=locked"), its values
    expanded with the stage's ARGs and ENV, checked as BuildKit checks it."""
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise MountError(f"cannot read the mount {text!r}") from None
    values: dict[str, Any] = {"type": "bind", "target": "", "source": "", "from": None, "id": "",
                              "sharing": "", "mode": None, "uid": None, "gid": None, "size": None}
    readonly: bool | None = None
    required = False
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                readonly = True
            elif key in ("readwrite", "rw"):
                readonly = False
            elif key == "required":
                required = True
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
            continue
        value = expand(value)
        if key == "type":
            if value.lower() not in TYPES:
                raise MountError(f'unsupported mount type "{value}" (one of {", ".join(TYPES)})')
            values["type"] = value.lower()
        elif key in ("source", "src"):
            values["source"] = value
        elif key in ("target", "dst", "destination"):
            values["target"] = value
        elif key in ("readonly", "ro"):
            readonly = _bool(key, value)
        elif key in ("readwrite", "rw"):
            readonly = not _bool(key, value)
        elif key == "sharing":
            if value.lower() not in SHARING:
                raise MountError(f'unsupported sharing value "{value}" (one of {", ".join(SHARING)})')
            values["sharing"] = value.lower()
        elif key == "mode":
            values["mode"] = _number(key, value, 8)
        elif key in ("uid", "gid"):
            values[key] = _number(key, value, 10)
        elif key == "size":
            values["size"] = _size(value)
        elif key in ("from", "id"):
            values[key] = value
        elif key == "required":
            required = _bool(key, value)
        elif key not in _KEYS:
            raise MountError(f"unexpected key '{key}' in '{field}'")
    kind = values["type"]
    if kind in ("secret", "ssh"):
        return _unprovided(kind, values, required, workdir)
    if kind != "cache":
        for key in ("mode", "uid", "gid"):
            if values[key] is not None:
                raise MountError(f'{key} not allowed for "{kind}" type mounts')
        if values["sharing"]:
            raise MountError(f"invalid cache sharing set for {kind} mount")
    if values["size"] is not None and kind != "tmpfs":
        raise MountError(f"unexpected key 'size' for mount type '{kind}'")
    target = posixpath.normpath(posixpath.join("/", workdir, values["target"]))
    if target.startswith("//"):
        target = "/" + target.lstrip("/")
    if target == "/":
        raise MountError(f'invalid mount target "{target}"')
    return MountSpec(
        type=kind, target=target, source=posixpath.normpath("/" + values["source"]).lstrip("/"),
        from_=values["from"], readonly=(kind == "bind") if readonly is None else readonly,
        id=values["id"] or target if kind == "cache" else "", sharing=values["sharing"] or "shared",
        mode=values["mode"], uid=values["uid"], gid=values["gid"], size=values["size"])


def _unprovided(kind: str, values: dict[str, Any], required: bool, workdir: str) -> MountSpec:
    """A secret or SSH mount. This builder has no secrets and no SSH agent to give a step, so
    a required one fails the step, and one that is not required (the default) mounts nothing,
    as in BuildKit when the client gives none; its id and target still key the RUN."""
    ident = values["id"]
    target = values["target"]
    if kind == "secret":
        if not ident and not target:
            raise MountError("secret ID missing from mount options")
        ident = ident or posixpath.basename(target)
        target = target or "/run/secrets/" + ident
    else:
        ident = ident or "default"
        target = target or "/run/buildkit/ssh_agent.0"
    if required:
        what = "secret" if kind == "secret" else "SSH agent"
        raise MountError(f"{what} {ident} is required, but this builder has no secrets or SSH agent "
                         "to give a step")
    target = posixpath.normpath(posixpath.join("/", workdir, target))
    return MountSpec(type=kind, target=target, source="", from_=None, readonly=True, id=ident,
                     sharing="shared", mode=None, uid=None, gid=None, size=None, required=False)


# -- cache inputs ---------------------------------------------------------------------------------


def key_inputs(spec: MountSpec, content: str | None) -> dict[str, Any]:
    """What the mount adds to the RUN's key. `content`: the checksum of what a bind mount (or
    a cache mount's seed) reads."""
    inputs: dict[str, Any] = {"type": spec.type, "target": spec.target, "readonly": spec.readonly}
    if spec.type == "bind":
        inputs.update(source=spec.source, **{"from": spec.from_}, content=content)
    elif spec.type == "cache":
        inputs.update(id=spec.id, sharing=spec.sharing)
        for name in ("mode", "uid", "gid"):
            if getattr(spec, name) is not None:
                inputs[name] = getattr(spec, name)
        if spec.from_ is not None:
            inputs.update(source=spec.source, **{"from": spec.from_}, content=content)
    elif spec.type in ("secret", "ssh"):
        inputs["id"] = spec.id
    elif spec.size is not None:
        inputs["size"] = spec.size
    return inputs


# -- execution ------------------------------------------------------------------------------------


@contextmanager
def prepared(store: Store, specs: list[MountSpec], items: Callable[[MountSpec], list[Item]],
             *, scope: str = DEFAULT_SCOPE) -> Iterator[list[Mount]]:
    """The sandbox mounts for `specs`, for as long as the step runs. `items(spec)` lists what a
    bind mount (or a cache mount's seed) reads; a cache mount is `scope`'s own."""
    with ExitStack() as stack:
        mounts: list[Mount] = []
        for spec in specs:
            if spec.type in ("secret", "ssh"):
                continue  # not given: nothing to mount (see _unprovided)
            if spec.type == "tmpfs":
                mounts.append(Mount("tmpfs", spec.target, size=spec.size))
            elif spec.type == "cache":
                path = stack.enter_context(cache_dir(store, spec, items, scope=scope))
                mounts.append(Mount("bind", spec.target, path, readonly=spec.readonly))
            else:
                work = store.work_dir("mount")
                stack.callback(store.discard, work)
                mounts.append(Mount("bind", spec.target, _lay_out(store, spec, items(spec), work),
                                    readonly=spec.readonly))
        yield mounts


def _lay_out(store: Store, spec: MountSpec, items: list[Item], work: Path) -> Path:
    """The bound files, laid out in the store's tmp/ and thrown away after the step. Read-only,
    they are hard links to the store's blobs and layer files, which the mount cannot change;
    writable (`rw`), they are copies, so that what the command writes is lost, as in BuildKit."""
    top = work / "m"
    placer = Placer(store.files if spec.readonly else None)
    copy_tree(items, top, owner=None, mode=None, placer=placer)
    return top


def cache_path(store: Store, spec: MountSpec, instance: int = 0, *, scope: str = DEFAULT_SCOPE) -> Path:
    """Where `scope`'s cache mount `spec.id` lives: one scope never sees another's, as one
    person's Docker never sees another's (BuildKit keys them by id within one builder)."""
    name = hashlib.sha256(spec.id.encode()).hexdigest()[:32]
    return store.scope_root(scope) / "mounts" / (f"{name}.{instance}" if instance else name)


@contextmanager
def cache_dir(store: Store, spec: MountSpec, items: Callable[[MountSpec], list[Item]],
              *, scope: str = DEFAULT_SCOPE) -> Iterator[Path]:
    """`scope`'s cache mount directory, made on first use (seeded from `from`, with its owner
    and mode) and held as `sharing` says: shared by any number of steps, locked (one step at a
    time), or private (a step that finds it in use gets another directory of its own)."""
    with ExitStack() as stack:
        instance = 0
        while spec.sharing != "shared":
            held = cache_path(store, spec, instance, scope=scope)
            lock = held.with_name(held.name + ".lock")
            lock.parent.mkdir(exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if spec.sharing == "locked" else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                instance += 1
                continue
            stack.callback(os.close, fd)  # closing releases the lock
            break
        path = cache_path(store, spec, instance, scope=scope)
        if not path.is_dir():
            with store.lock(f"mount-{path.name}"):
                if not path.is_dir():
                    _make_cache(store, spec, path, items)
        yield path


def _make_cache(store: Store, spec: MountSpec, path: Path, items: Callable[[MountSpec], list[Item]]) -> None:
    work = store.work_dir("cache")
    top = work / "c"
    if spec.from_ is not None:
        copy_tree(items(spec), top, owner=None, mode=None, placer=Placer(None))
        if not top.is_dir():
            raise MountError(f"the cache mount's source /{spec.source} in {spec.from_} is not a directory")
    else:
        top.mkdir()
    os.chown(top, spec.uid or 0, spec.gid or 0)
    os.chmod(top, spec.mode if spec.mode is not None else 0o755)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.rename(top, path)
    os.rmdir(work)


def from_names(texts: tuple[str, ...]) -> list[str]:
    """The `from=` stages or images of --mount values, as written (for planning which stages a
    target needs, before anything is expanded)."""
    names = []
    for text in texts:
        try:
            fields = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            continue
        for field in fields:
            key, sep, value = field.partition("=")
            if sep and key.lower() == "from":
                names.append(value)
    return names
