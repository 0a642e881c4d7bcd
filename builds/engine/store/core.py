"""The Store: paths, atomic writes, and every kind of object the store keeps."""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ..dockerhub import DOCKER_HUB_ALIASES, OFFICIAL_PREFIX
from ..errors import InputError
from ..parallel import Sha256Behind
from .contents import FileBlobs
from .objects import FileChange, Image, Layer, canonical_json
from .tarstream import OPAQUE_XATTRS, LayerFormatError, Walked, walk_layer

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_temp_ids = itertools.count()
# A process that puts anything in a store's tmp/ first takes locks/holder-<token> (flock,
# held until it exits) and puts the token in every name it makes there; what is in tmp/
# under a token whose lock is free was left by a process that died, and reclaim() takes it.
_TOKEN = re.compile(r"~([0-9a-f]{16})(?![0-9a-f])")
_holders: dict[tuple[int, str], tuple[str, int]] = {}  # (pid, locks dir) -> (token, lock fd)
_holders_lock = threading.Lock()
DEFAULT_TAG = "latest"
# The scope of the cache index a store had before scopes existed: the command line's default.
DEFAULT_SCOPE = ""


class LayerError(InputError):
    """A layer that cannot be stored: an unsafe or unreadable tar, or a tree a tar cannot carry."""


def _hex(digest: str) -> str:
    hex_ = digest.removeprefix("sha256:")
    if not _HEX64.fullmatch(hex_):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hex_


def key_file_name(key: str) -> str:
    """A cache key as a file name: the hex of a "sha256:" key, else a hash of the key (which
    can then hold any character, and cannot collide with a hex name)."""
    hex_ = key.removeprefix("sha256:")
    if key.startswith("sha256:") and _HEX64.fullmatch(hex_):
        return hex_
    return "h" + hashlib.sha256(key.encode()).hexdigest()


def parse_ref(ref: str) -> tuple[str, str]:
    """ "name[:tag]" -> (name, tag), with Docker Hub's implicit prefixes dropped, so that
    "docker.io/library/busybox", "library/busybox" and "busybox" are one name."""
    name, tag = ref, DEFAULT_TAG
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry's port
        name, tag = ref[:colon], ref[colon + 1:]
    for alias in DOCKER_HUB_ALIASES:
        if name.startswith(f"{alias}/"):
            name = name[len(alias) + 1:]
            break
    name = name.removeprefix(OFFICIAL_PREFIX)
    return name, tag


class Store:
    """The content-addressed store under `root`. Cheap to make: it creates its directories
    if missing and reads nothing."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "l"
        self.images = self.root / "images"
        self.cache = self.root / "cache"
        self.children = self.root / "children"
        self.tmp = self.root / "tmp"
        self.trash = self.tmp / "trash"
        self.locks = self.root / "locks"
        self.tags_file = self.root / "tags.json"
        self.files = FileBlobs(self.root / "f")
        if not self.locks.is_dir():
            # locks/ is made last, so when it exists every other directory does too: a store
            # in use costs one stat here.
            for path in (self.blobs, self.layers, self.images, self.cache, self.children, self.trash,
                         self.files.root, self.locks):
                path.mkdir(parents=True, exist_ok=True)

    # -- work space -------------------------------------------------------------------------
    def token(self) -> str:
        """This process's mark on what it puts in tmp/ ("~" and 16 hex), its lock taken."""
        key = (os.getpid(), str(self.locks))
        held = _holders.get(key)
        if held is None:
            with _holders_lock:
                held = _holders.get(key)
                if held is None:
                    _forget_gone_holders()
                    token = "~" + secrets.token_hex(8)
                    lock = self.locks / f"holder-{token[1:]}"
                    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                    fcntl.flock(fd, fcntl.LOCK_EX)  # released when this process ends
                    held = _holders[key] = (token, fd)
        return held[0]

    def work_dir(self, prefix: str) -> Path:
        """A fresh empty directory under tmp/ (same filesystem as l/, so it can be renamed in)."""
        path = self.tmp / f"{prefix}-{self.token()}-{next(_temp_ids)}"
        path.mkdir(0o755)
        path.chmod(0o755)  # whatever the umask: as an upper directory it is the image's root mode
        return path

    def own_token(self) -> str | None:
        """This process's token in this store, if it has put anything in tmp/."""
        held = _holders.get((os.getpid(), str(self.locks)))
        return held[0] if held is not None else None

    def release(self) -> None:
        """This process is done with tmp/: its token and lock go (whatever it left there is
        then for reclaim() to take). A later work_dir() takes a new token."""
        with _holders_lock:
            _drop_holder((os.getpid(), str(self.locks)))

    @staticmethod
    def token_of(name: str) -> str | None:
        """The token in a name in tmp/, if it has one."""
        found = _TOKEN.search(name)
        return "~" + found.group(1) if found is not None else None

    def _holder_tokens(self) -> set[str]:
        with os.scandir(self.locks) as entries:
            return {"~" + entry.name[7:] for entry in entries if entry.name.startswith("holder-")}

    @contextmanager
    def _if_dead(self, token: str) -> Iterator[bool]:
        """Whether the process of `token` is gone (its lock taken here meanwhile, so that it
        is this caller's alone to clear away). No lock file: another reclaim cleared it, or
        died doing so."""
        with _flock_if_free(self.locks / f"holder-{token[1:]}", create=False) as taken:
            yield taken is not False

    def others_at_work(self) -> bool:
        """Whether another live process has things in this store's tmp/ (a build, probably)."""
        own = self.own_token()
        for token in self._holder_tokens() - {own}:
            with self._if_dead(token) as dead:
                if not dead:
                    return True
        return False

    def reclaim(self) -> int:
        """Move into the trash what processes that died left in tmp/ (a worker killed during a
        step leaves its upper directory there), and drop their locks. Only names carrying a
        token whose lock is free: a live process holds its own. Returns how many entries of
        tmp/ went."""
        left: dict[str, list[str]] = {token: [] for token in self._holder_tokens()}
        with os.scandir(self.tmp) as entries:
            for entry in entries:
                token = self.token_of(entry.name)
                if token is not None and entry.name != "trash":
                    left.setdefault(token, []).append(entry.path)
        left.pop(self.own_token() or "", None)
        moved = 0
        for token, paths in left.items():
            with self._if_dead(token) as dead:
                if not dead:
                    continue
                for path in paths:
                    self.discard(Path(path))
                    moved += 1
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.locks / f"holder-{token[1:]}")
        return moved

    def discard(self, path: Path) -> None:
        """Move `path` into the trash: deleting a large tree here would stall later writes
        (the disk discards on delete), so it is deleted later by empty_trash()."""
        target = self.trash / f"{path.name}.{os.getpid()}.{next(_temp_ids)}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, target)

    def empty_trash(self, *, stop: Callable[[], bool] | None = None, check_every: int = 256) -> int:
        """Delete what discard() set aside; for idle moments (a worker between builds), since
        deleting stalls the writes of a build running beside it. `stop` is asked every
        `check_every` deletions and ends the work early when it says so (a build has started);
        what is left waits for the next idle moment. Returns how many entries of the trash went."""
        count = 0
        deleted = 0
        for entry in os.scandir(self.trash):
            if entry.is_dir(follow_symlinks=False):
                for top, dirs, files in os.walk(entry.path, topdown=False):
                    for name in files + dirs:
                        path = os.path.join(top, name)
                        with contextlib.suppress(FileNotFoundError):
                            if name in files or os.path.islink(path):
                                os.unlink(path)
                            else:
                                os.rmdir(path)
                        deleted += 1
                        if stop is not None and deleted % check_every == 0 and stop():
                            return count
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(entry.path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            count += 1
            deleted += 1
            if stop is not None and deleted % check_every == 0 and stop():
                return count
        return count

    def _temp_path(self, hint: str) -> Path:
        # token, thread and a counter make the name unique among live writers without the
        # random-name retries of tempfile.
        return self.tmp / f".{hint}.{self.token()}.{threading.get_ident()}.{next(_temp_ids)}"

    def _write_atomic(self, path: Path, data: bytes, *, exclusive: bool = False) -> bool:
        """Write `data` to `path` through a temp file and a rename, so readers see the whole
        file or none. `exclusive`: keep an existing file (an immutable object written by a
        racing process). Returns whether this call wrote it."""
        temp = self._temp_path(path.name)
        with open(temp, "wb") as f:
            f.write(data)
        try:
            if not exclusive:
                os.replace(temp, path)
                return True
            try:
                os.link(temp, path)
                return True
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    # -- blobs ------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / _hex(digest)

    def put_blob(self, data: bytes) -> str:
        """Store bytes, return "sha256:<hex>"."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            self._write_atomic(path, data, exclusive=True)
        return digest

    def put_json(self, doc: Any) -> str:
        """Store canonical JSON (sorted keys, no spaces), return its digest."""
        return self.put_blob(canonical_json(doc))

    def get_json(self, digest: str) -> Any:
        return json.loads(self.blob_path(digest).read_bytes())

    # -- layers -----------------------------------------------------------------------------
    def layer_path(self, layer_id: str) -> Path:
        return self.layers / layer_id

    def layer(self, layer_id: str, *, changes: bool = False) -> Layer:
        """The layer's facts. Its file list is read only when `changes` is asked for: it can
        be long, and the fully cached path reads the facts of every layer."""
        layer = Layer.from_json(json.loads((self.layers / f"{layer_id}.json").read_bytes()))
        if changes:
            rows = json.loads((self.layers / f"{layer_id}.changes.json").read_bytes())
            layer.changes = [FileChange.from_row(row) for row in rows]
        return layer

    def has_layer(self, layer_id: str) -> bool:
        return (self.layers / layer_id).is_dir()

    def commit_layer(self, upper: Path, lower: list[str]) -> Layer | None:
        """Turn a finished upper directory into a stored layer. `lower` is the layer ids below
        it, bottom first, used to tell added from modified and to describe whiteouts. Computes
        the diff_id by streaming the layer's tar (OCI whiteouts `.wh.x` / `.wh..wh..opq`, sorted
        entries, mtimes kept, numeric uid/gid, no user/group names) through sha256 without
        writing it, then renames `upper` to l/<id> (or drops it when that layer already
        exists). Returns None, and removes `upper`, when it holds no change at all."""
        lowers = [self.layer_path(layer_id) for layer_id in reversed(lower)]
        digest = Sha256Behind()  # hashes on the other core while the walk reads the tree
        try:
            walked = walk_layer(upper, digest.update, lowers)
        except LayerFormatError as exc:
            raise LayerError(str(exc)) from None
        finally:
            diff_id = "sha256:" + digest.hexdigest()  # which also ends its thread
        if not walked.changes:
            self.discard(upper)
            return None
        return self._keep_layer(upper, _layer(diff_id, walked), walked.opaque_dirs)

    def import_layer(self, tar: IO[bytes]) -> Layer:
        """Unpack a layer tar (plain, gzip or zstd), turning OCI whiteouts into overlay ones."""
        from .unpack import UnsafeLayer, unpack  # tarfile and friends: not for a build's path

        work = self.work_dir("import")
        try:
            unpack(tar, str(work))
            digest = hashlib.sha256()
            walked = walk_layer(work, digest.update, [])
        except (UnsafeLayer, LayerFormatError) as exc:
            self.discard(work)
            raise LayerError(f"cannot import the layer: {exc}") from None
        except BaseException:
            self.discard(work)
            raise
        return self._keep_layer(work, _layer("sha256:" + digest.hexdigest(), walked), walked.opaque_dirs)

    def _keep_layer(self, tree: Path, layer: Layer, opaque_dirs: list[bytes]) -> Layer:
        """Move `tree` in as l/<id> unless that layer is there already. The facts go first, so
        a layer directory that exists always has them; a racing writer of the same layer
        finds them and its directory rename fails, and its tree goes to the trash."""
        target = self.layer_path(layer.id)
        if target.exists():
            self.discard(tree)
            return layer
        for path in opaque_dirs:
            # The sandbox marks opaque directories with one of the two names; give them both,
            # so the layer reads the same under any overlay mount and to rootfs.RootFS.
            for name in OPAQUE_XATTRS:
                os.setxattr(path, name, b"y")
        self._write_atomic(self.layers / f"{layer.id}.changes.json",
                           json.dumps([c.to_row() for c in layer.changes], ensure_ascii=False).encode(),
                           exclusive=True)
        self._write_atomic(self.layers / f"{layer.id}.json", json.dumps(layer.summary()).encode(),
                           exclusive=True)
        try:
            os.rename(tree, target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            self.discard(tree)
        return layer

    def write_layer_tar(self, layer_id: str, out: IO[bytes]) -> str:
        """Write the layer's tar (the same bytes commit_layer hashed); returns its diff_id.
        Hashes what it writes, and raises if the layer no longer matches its diff_id."""
        digest = hashlib.sha256()

        def emit(data: bytes | memoryview) -> None:
            digest.update(data)
            out.write(data)

        walk_layer(self.layer_path(layer_id), emit)
        diff_id = "sha256:" + digest.hexdigest()
        if not diff_id.startswith("sha256:" + layer_id):
            raise LayerError(f"layer {layer_id} changed after it was stored (its tar is now {diff_id})")
        return diff_id

    def layer_tar_size(self, layer_id: str) -> int:
        """Bytes of the layer's tar, from its facts (or by making the stream, for facts that
        predate the field)."""
        size = self.layer(layer_id).tar_size
        return size if size else walk_layer(self.layer_path(layer_id), _discard_bytes).tar_size

    # -- images and tags --------------------------------------------------------------------
    def put_image(self, image: Image) -> str:
        config = image.config_bytes()
        image.digest = self.put_blob(config)
        path = self.images / f"{_hex(image.digest)}.json"
        if not path.exists():
            self._write_atomic(path, json.dumps(image.to_json(), ensure_ascii=False).encode(), exclusive=True)
        return image.digest

    def get_image(self, ref: str) -> Image | None:
        """By "name[:tag]" (tag defaults to latest; "docker.io/library/" prefixes are ignored)
        or by "sha256:<hex>" config digest."""
        digest = ref.split("@", 1)[1] if "@" in ref else ref
        if not digest.startswith("sha256:") and not _HEX64.fullmatch(digest):
            name, tag = parse_ref(ref)
            found = self.tags().get(f"{name}:{tag}")
            if found is None:
                return None
            digest = found
        try:
            data = json.loads((self.images / f"{_hex(digest)}.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return Image.from_json(data)

    def tag(self, name: str, digest: str) -> None:
        _hex(digest)
        repo, tag = parse_ref(name)
        with self.lock("tags"):
            tags = self.tags()
            if tags.get(f"{repo}:{tag}") == digest:
                return
            tags[f"{repo}:{tag}"] = digest
            self._write_atomic(self.tags_file, json.dumps(tags, indent=1, sort_keys=True).encode())

    def untag(self, name: str) -> bool:
        repo, tag = parse_ref(name)
        with self.lock("tags"):
            tags = self.tags()
            if tags.pop(f"{repo}:{tag}", None) is None:
                return False
            self._write_atomic(self.tags_file, json.dumps(tags, indent=1, sort_keys=True).encode())
            return True

    def tags(self) -> dict[str, str]:
        try:
            return json.loads(self.tags_file.read_bytes())
        except FileNotFoundError:
            return {}

    # -- cache index ------------------------------------------------------------------------
    # The index is kept per scope; the layers it points at are shared by every scope. The
    # store's own scope (DEFAULT_SCOPE, the command line's) is cache/ and children/ at the
    # root, where the one index a store had before scopes existed already is.
    def scope_root(self, scope: str) -> Path:
        """The directory of `scope`'s cache index and cache mounts."""
        if scope == DEFAULT_SCOPE:
            return self.root
        return self.root / "scopes" / hashlib.sha256(scope.encode()).hexdigest()[:32]

    def _cache_path(self, key: str, scope: str) -> Path:
        name = key_file_name(key)
        return self.scope_root(scope) / "cache" / name[:2] / f"{name}.json"

    def cache_get(self, key: str, *, scope: str = DEFAULT_SCOPE) -> dict[str, Any] | None:
        """The record `scope`'s index holds for `key`; never another scope's."""
        try:
            with open(self._cache_path(key, scope), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None

    def cache_put(self, key: str, record: dict[str, Any], *, parent: str, scope: str = DEFAULT_SCOPE) -> None:
        """Record a built step under its key in `scope`'s index, and append it to the scope's
        children/<parent>."""
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        path = self._cache_path(key, scope)
        try:
            self._write_atomic(path, data)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_atomic(path, data)
            self._name_scope(scope)
        children = self.scope_root(scope) / "children"
        children.mkdir(parents=True, exist_ok=True)
        self._append(children / f"{key_file_name(parent)}.jsonl", data + b"\n")

    def _name_scope(self, scope: str) -> None:
        # A scope's directory is named by a hash; its name is written beside it for people.
        if scope != DEFAULT_SCOPE:
            name = self.scope_root(scope) / "scope.txt"
            if not name.exists():
                self._write_atomic(name, scope.encode())

    @staticmethod
    def _append(path: Path, line: bytes) -> None:
        # One write() with O_APPEND: Linux writes it whole, after every other append, so
        # concurrent writers' lines never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write appending to", str(path))
        finally:
            os.close(fd)

    def cache_children(self, parent: str, *, scope: str = DEFAULT_SCOPE) -> list[dict[str, Any]]:
        """Records `scope`'s builds made on `parent`, oldest first."""
        try:
            data = (self.scope_root(scope) / "children" / f"{key_file_name(parent)}.jsonl").read_bytes()
        except FileNotFoundError:
            return []
        records = []
        for line in data.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a full disk or a crash: skip it, keep the rest
        return records

    # -- locks ------------------------------------------------------------------------------
    @contextmanager
    def lock_if_free(self, name: str) -> Iterator[bool]:
        """The lock `name` if no other process holds it (True), else nothing (False)."""
        with _flock_if_free(self.locks / name, create=True) as taken:
            yield bool(taken)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive inter-process lock (flock on locks/<name>)."""
        file_name = name if _SAFE_NAME.fullmatch(name) else key_file_name(name)
        fd = os.open(self.locks / file_name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


@contextmanager
def _flock_if_free(path: Path, *, create: bool) -> Iterator[bool | None]:
    """flock `path` unless another process holds it: True when taken (until the block ends),
    False when held elsewhere, None when there is no such file and `create` is false."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _drop_holder(key: tuple[int, str]) -> None:
    held = _holders.pop(key, None)
    if held is not None:
        with contextlib.suppress(OSError):
            os.unlink(f"{key[1]}/holder-{held[0][1:]}")
        with contextlib.suppress(OSError):
            os.close(held[1])


@atexit.register
def _drop_holders() -> None:
    """A process that ends normally has cleared its things from tmp/: its locks go too."""
    for key in list(_holders):
        if key[0] == os.getpid():
            _drop_holder(key)


def _forget_gone_holders() -> None:
    """Close the locks of stores whose lock file is gone (a test's store, deleted), so a
    process that opens many stores does not keep a descriptor for each."""
    for key, (_token, fd) in list(_holders.items()):
        try:
            gone = os.fstat(fd).st_nlink == 0
        except OSError:
            gone = True
        if gone:
            del _holders[key]
            with contextlib.suppress(OSError):
                os.close(fd)


def _layer(diff_id: str, walked: Walked) -> Layer:
    counts = {"added": 0, "modified": 0, "deleted": 0}
    for change in walked.changes:
        counts[change.change] += 1
    return Layer(id=diff_id[7:23], diff_id=diff_id, size=walked.size, changes=walked.changes,
                 tar_size=walked.tar_size, **counts)


def _discard_bytes(data: bytes | memoryview) -> None:
    pass
