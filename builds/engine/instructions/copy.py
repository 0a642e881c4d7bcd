"""COPY and ADD: keyed by the content of what they copy (not its mtime), the destination and
the options; `--from` reads a finished stage or an image instead of the build context."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..context import (
    BadPattern,
    BuildContext,
    Entry,
    MatchInfo,
    Pattern,
    compile_pattern,
    match_path,
    sha256_file,
)
from ..dockerfile import Heredoc, expand_heredoc
from ..errors import ContextError, DockerfileError, StepFailed
from ..rootfs import Found, RootFS
from ..store.budget import LayerBudget, LayerLimit, UnsafeLayer
from .base import Planned, StageState, Step
from .fs import Item, Placer, copy_tree, ensure_dir, found_items, owner_key, resolve_owner

GLOB_CHARS = "*?["
UNSUPPORTED_FLAGS = ("checksum", "keep-git-dir")


@dataclass
class Source:
    """One matched source: a context entry or an entry of an earlier stage/image."""

    name: str  # its base name, for `COPY file dir/`
    is_dir: bool
    items: list[Item] | None = None  # filled when copying
    entry: Entry | None = None
    found: Found | None = None


class Copy(Step):
    keyword = "COPY"

    def words(self, state: StageState) -> tuple[list[str], str]:
        words = [self.expand(word, state) for word in self.ins.args]
        return words[:-1], words[-1]

    def dest(self, state: StageState, written: str) -> str:
        joined = posixpath.normpath(posixpath.join(state.workdir, written))
        return joined + "/" if written.endswith(("/", "/.")) or written in (".", "./") else joined

    def check_flags(self) -> None:
        for name in UNSUPPORTED_FLAGS:
            if name in self.ins.flags:
                raise self.error(f"{self.keyword} --{name} is not supported by this builder yet")
        chmod = self.ins.flag("chmod")
        if chmod is not None and (not chmod or any(c not in "01234567" for c in chmod)):
            raise self.error(f"{self.keyword} --chmod={chmod}: expected an octal mode such as 0755")

    # -- cache inputs ------------------------------------------------------------------------------
    def plan(self, state: StageState) -> Planned:
        self.check_flags()
        srcs, written_dest = self.words(state)
        dest = self.dest(state, written_dest)
        source = self.ins.flag("from")
        if self.ins.heredocs:
            srcs = [doc.name for doc in self.ins.heredocs]
            checksums, manifest = self._heredoc_sums(state)
        elif source is None:
            checksums, manifest = self._context_sums(srcs)
        else:
            checksums, manifest = self._image_sums(srcs, self._source_rootfs(source, state))
        self._kept: list[Source] | None = None
        excludes = self._excludes()
        if excludes and not self.ins.heredocs:
            # The key is made from what is left once the excluded files are taken out.
            self._kept = [kept for src in srcs for kept in self._filtered(src, excludes)]
            checksums = [_items_checksum(kept.items or []) for kept in self._kept]
            manifest = self._kept_manifest(self._kept)
        inputs: dict[str, Any] = {
            "op": self.keyword.lower(),
            "src": [posixpath.normpath(src) for src in srcs],
            "sources": checksums,
            "dest": dest,
            "chown": _owner_key(self.ins.flag("chown")),
            "chmod": self.ins.flag("chmod"),
        }
        # Only when given, so that every other COPY keeps the key it had.
        if excludes:
            inputs["exclude"] = list(self.ins.flags["exclude"])
        if self._parents():
            inputs["parents"] = True
        return Planned(inputs, {"from": source}, manifest=manifest)

    # -- --exclude and --parents -------------------------------------------------------------------
    def _excludes(self) -> list[Pattern]:
        texts = self.ins.flags.get("exclude", ())
        try:
            return [compile_pattern(text) for text in texts]
        except BadPattern as exc:
            raise self.error(f"{self.keyword} --exclude: {exc}") from None

    def _parents(self) -> bool:
        value = self.ins.flag("parents")
        if value is None:
            return False
        if value.lower() in ("", "true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise self.error(f"{self.keyword} --parents={value}: expected true or false")

    def _filtered(self, src: str, patterns: list[Pattern]) -> list[Source]:
        """The sources `src` names with what --exclude takes out: a whole source matched by a
        wildcard when its name matches, and anything below a directory whose path under it
        matches (`!` patterns bring files back, as in .dockerignore)."""
        globbed = any(c in src for c in GLOB_CHARS)
        out = []
        for source in self._sources([src]):
            if globbed and match_path(patterns, source.name)[0]:
                continue
            out.append(replace(source, items=_without(source.items or [], patterns)))
        return out

    def _kept_manifest(self, sources: list[Source]) -> Callable[[], dict[str, str]]:
        def manifest() -> dict[str, str]:
            items = [item for source in sources for item in source.items or []]
            return {item.name or item.rel: _item_digest(item) for item in items
                    if item.rel or not stat.S_ISDIR(item.st.st_mode)}

        return manifest

    def _parent_path(self, src: str, source: Source) -> str:
        """Where `COPY --parents` puts a source under the destination: its path in the context,
        or the part after a `/./` in what was written."""
        path = source.entry.path if source.entry is not None else (source.found.path if source.found else "")
        pivot = src.find("/./")
        if pivot < 0:
            return path
        base = posixpath.normpath(src[:pivot].lstrip("/"))
        base = "" if base == "." else base
        return path[len(base) + 1:] if base and path.startswith(base + "/") else path

    def _heredoc_sums(self, state: StageState) -> tuple[list[str], Callable[[], dict[str, str]]]:
        """`COPY <<EOF /file` writes the heredoc's body: keyed by that text, as expanded."""
        sums = {
            doc.name: "sha256:" + hashlib.sha256(self._heredoc_text(doc, state).encode()).hexdigest()
            for doc in self.ins.heredocs
        }
        return list(sums.values()), lambda: sums

    def _heredoc_text(self, doc: Heredoc, state: StageState) -> str:
        """The body, with ARGs and ENV expanded unless the delimiter was quoted (<<"EOF")."""
        if not doc.expand:
            return doc.body()
        try:
            return expand_heredoc(doc.body(), state.expansion_env(), escape=self.build.escape)
        except DockerfileError as exc:
            raise self.error(f"{self.keyword} <<{doc.name}: {exc}") from None

    def _write_heredocs(
        self, state: StageState, upper: Path, rootfs: RootFS, dest: str, owner: tuple[int, int] | None,
        mode: int | None,
    ) -> None:
        docs = self.ins.heredocs
        if len(docs) > 1 and not dest.endswith("/"):
            raise self.error(
                f"when using {self.keyword} with more than one heredoc, "
                "the destination must be a directory and end with a /"
            )
        for doc in docs:
            path = posixpath.join(dest, doc.name) if dest.endswith("/") or rootfs.is_dir(dest) else dest
            target = ensure_dir(upper, rootfs, posixpath.dirname(path)) / posixpath.basename(path)
            target.write_text(self._heredoc_text(doc, state))
            os.chown(target, *(owner or (0, 0)))
            os.chmod(target, mode if mode is not None else 0o644)

    def _context_sums(self, srcs: list[str]) -> tuple[list[str], Callable[[], dict[str, str]]]:
        context = self.build.context
        matched = [self._resolve(src) for src in srcs]
        sums = [context.checksum(entries) for entries in matched]

        def manifest() -> dict[str, str]:
            return context.manifest([entry for entries in matched for entry in entries])

        return sums, manifest

    def _resolve(self, src: str) -> list[Entry]:
        if "://" in src and self.keyword == "ADD":
            raise self.error(
                f"ADD {src}: downloading a URL is not available here (the studio builds offline)"
            )
        return self.build.context.resolve(src, file=self.build.dockerfile_name, line=self.ins.line)

    def _source_rootfs(self, name: str, state: StageState) -> RootFS:
        return self.source_rootfs(name, state, what=f"{self.keyword} --from")

    def _image_sums(self, srcs: list[str], rootfs: RootFS) -> tuple[list[str], Callable[[], dict[str, str]]]:
        matched = [self._find(rootfs, src) for src in srcs]
        per_source: list[str] = []
        everything: dict[str, str] = {}
        for founds in matched:
            per_source.append(tree_checksum(rootfs, founds, everything))
        self._founds = (rootfs, dict(zip(srcs, matched, strict=True)))
        return per_source, lambda: everything

    def _find(self, rootfs: RootFS, src: str) -> list[Found]:
        path = src.strip("/")
        if not any(c in path for c in GLOB_CHARS):
            found = rootfs.resolve(path)
            founds = [found] if found is not None else []
        else:
            parent, pattern = posixpath.split(path)
            founds = [
                f for name, f in sorted(rootfs.listdir(parent).items()) if fnmatch.fnmatchcase(name, pattern)
            ]
        if not founds:
            raise ContextError(
                f'{self.keyword} --from: "{src}" not found in {self.ins.flag("from")}',
                file=self.build.dockerfile_name,
                line=self.ins.line,
            )
        return founds

    # -- execution ---------------------------------------------------------------------------------
    def execute(self, state: StageState, upper: Path) -> None:
        srcs, written_dest = self.words(state)
        dest = self.dest(state, written_dest)
        rootfs = self.rootfs(state)
        owner = self._owner(rootfs)
        chmod = self.ins.flag("chmod")
        mode = int(chmod, 8) if chmod else None
        if self.ins.heredocs:
            self._write_heredocs(state, upper, rootfs, dest, owner, mode)
            return
        if self._parents():
            self._copy_with_parents(srcs, dest, upper, rootfs, owner, mode)
            return
        sources = self._kept if self._kept is not None else self._sources(srcs)
        into_dir = dest.endswith("/") or rootfs.is_dir(dest)
        if len(sources) > 1 and not dest.endswith("/"):
            raise self.error(
                f"when using {self.keyword} with more than one source file, "
                "the destination must be a directory and end with a /"
            )
        placer = Placer(self.build.store.files, adopt=self.build.context_owned)
        budget = LayerBudget(self.build.limits.disk_bytes, self.build.limits.files)
        for source in sources:
            if self.keyword == "ADD" and source.entry is not None and self._is_archive(source):
                self._extract(source, upper, rootfs, dest, budget)
                continue
            self._charge(budget, source.items or [])
            if source.is_dir:
                # A directory's contents are copied; the destination keeps its own metadata.
                target = ensure_dir(upper, rootfs, dest, owner=owner or (0, 0))
                contents = [item for item in source.items or [] if item.rel]
                copy_tree(contents, target, owner=owner, mode=mode, placer=placer)
                continue
            path = posixpath.join(dest, source.name) if into_dir else dest.rstrip("/")
            parent = ensure_dir(upper, rootfs, posixpath.dirname(path))
            copy_tree(source.items or [], parent / posixpath.basename(path), owner=owner, mode=mode,
                      placer=placer)

    def _charge(self, budget: LayerBudget, items: list[Item]) -> None:
        """Count what is about to be copied against the layer's limits, before copying any of it."""
        try:
            for item in items:
                size = item.st.st_size if stat.S_ISREG(item.st.st_mode) else 0
                budget.charge(size, item.name or item.rel)
        except LayerLimit as exc:
            raise self.limit_error(exc) from None

    def limit_error(self, exc: LayerLimit, what: str = "") -> StepFailed:
        error = StepFailed(f"{self.keyword}{' ' + what if what else ''}: {exc}",
                           file=self.build.dockerfile_name, line=self.ins.line)
        return error.with_details(limit=exc.limit)  # type: ignore[return-value]

    def _copy_with_parents(self, srcs: list[str], dest: str, upper: Path, rootfs: RootFS,
                           owner: tuple[int, int] | None, mode: int | None) -> None:
        """--parents: each source lands at its own path under the destination, its parent
        directories made with their metadata from the context."""
        if self.ins.flag("from") is not None:
            raise self.error(f"{self.keyword} --parents with --from is not supported by this builder yet")
        context = self.build.context
        placer = Placer(self.build.store.files, adopt=self.build.context_owned)
        target = ensure_dir(upper, rootfs, dest, owner=owner or (0, 0))
        patterns = self._excludes()
        budget = LayerBudget(self.build.limits.disk_bytes, self.build.limits.files)
        for src in srcs:
            sources = self._filtered(src, patterns) if patterns else self._sources([src])
            for source in sources:
                self._charge(budget, source.items or [])
                rel = self._parent_path(src, source)
                assert source.entry is not None
                base = source.entry.path[:len(source.entry.path) - len(rel)].rstrip("/")
                parents = []
                parts = rel.split("/")
                for i in range(1, len(parts)):
                    inside = "/".join(parts[:i])
                    real = posixpath.join(base, inside) if base else inside
                    parents.append(Item(inside, context.path(real), context.stat(real)))
                copy_tree(parents, target, owner=owner, mode=None, placer=placer)
                items = source.items or []
                if source.is_dir:
                    items = [item._replace(rel=posixpath.join(rel, item.rel) if item.rel else rel)
                             for item in items]
                    copy_tree(items, target, owner=owner, mode=mode, placer=placer)
                else:
                    copy_tree(items, target / rel, owner=owner, mode=mode, placer=placer)

    def _owner(self, rootfs: RootFS) -> tuple[int, int] | None:
        chown = self.ins.flag("chown")
        if not chown:
            return None
        try:
            return resolve_owner(rootfs, chown)
        except ValueError as exc:
            raise self.error(f"{self.keyword} --chown={chown}: {exc}{_as_written(chown)}") from None

    def _sources(self, srcs: list[str]) -> list[Source]:
        """The matched sources with what to copy; `plan` has run, and for --from it kept the
        entries it checksummed, so the copy is exactly what the key was made from."""
        out: list[Source] = []
        if self.ins.flag("from") is not None:
            rootfs, matched = self._founds
            for src in srcs:
                for found in matched[src]:
                    out.append(
                        Source(
                            posixpath.basename(found.path),
                            stat.S_ISDIR(found.st.st_mode),
                            found_items(rootfs, found),
                            found=found,
                        )
                    )
            return out
        context = self.build.context
        for src in srcs:
            for entry in self._resolve(src):
                items = context_items(context, entry)
                out.append(Source(posixpath.basename(entry.path), entry.kind == "dir", items, entry=entry))
        return out

    def _is_archive(self, source: Source) -> bool:
        return False

    def _extract(self, source: Source, upper: Path, rootfs: RootFS, dest: str, budget: LayerBudget) -> None:
        raise NotImplementedError


class Add(Copy):
    """ADD: COPY plus extraction of local tar archives (URLs need a network the studio has not)."""

    keyword = "ADD"

    def _is_archive(self, source: Source) -> bool:
        if source.is_dir or source.entry is None or source.entry.kind != "file":
            return False
        from ..store.unpack import is_archive  # only ADD needs tarfile

        return is_archive(str(self.build.context.root / source.entry.path))

    def _extract(self, source: Source, upper: Path, rootfs: RootFS, dest: str, budget: LayerBudget) -> None:
        target = ensure_dir(upper, rootfs, dest)
        assert source.entry is not None
        archive = self.build.context.root / source.entry.path
        from ..store.unpack import extract_archive

        try:
            extract_archive(str(archive), str(target), budget)
        except LayerLimit as exc:
            raise self.limit_error(exc, f"{source.entry.path} (extracting it)") from None
        except (UnsafeLayer, OSError) as exc:
            raise self.error(f"ADD {source.entry.path}: cannot extract the archive: {exc}") from None


def found_digest(found: Found) -> str:
    """Content digest of one image entry: type, mode, owner, and content or link target."""
    st = found.st
    head = f"{stat.S_IFMT(st.st_mode)}:{stat.S_IMODE(st.st_mode):o}:{st.st_uid}:{st.st_gid}"
    if stat.S_ISREG(st.st_mode):
        body = sha256_file(str(found.real))
    elif stat.S_ISLNK(st.st_mode):
        body = os.readlink(found.real)
    else:
        body = ""
    return "sha256:" + hashlib.sha256(f"{head}\0{body}".encode()).hexdigest()


def tree_checksum(rootfs: RootFS, founds: list[Found], everything: dict[str, str]) -> str:
    """One digest over the image entries `founds` and everything below them; every path's own
    digest goes into `everything` (what a later build names changed files from)."""
    digest = hashlib.sha256()
    for top in founds:
        for found in rootfs.walk(top):
            entry_digest = found_digest(found)
            everything[found.path] = entry_digest
            digest.update(f"{found.path}\0{entry_digest}\n".encode())
    return "sha256:" + digest.hexdigest()


def context_items(context: BuildContext, entry: Entry) -> list[Item]:
    """`entry` of the build context and everything visible below it, as copy_tree items
    relative to it; files carry their content digest, so they go in as the store's blobs."""
    prefix = len(entry.path) + 1 if entry.path else 0
    items = []
    for sub in context.walk(entry):
        real = context.path(sub.path)
        rel = sub.path[prefix:] if sub.path != entry.path else ""
        digest = context.content_digest(sub.path) if sub.kind == "file" else ""
        items.append(Item(rel, real, context.stat(sub.path), digest, sub.path))
    return items


def _without(items: list[Item], patterns: list[Pattern]) -> list[Item]:
    """`items` (parents first, relative to what is copied) less what `patterns` exclude; an
    excluded directory stays when something below it is brought back by a `!` pattern."""
    infos: dict[str, MatchInfo | None] = {"": None}
    kept: list[bool] = []
    for item in items:
        if not item.rel:
            kept.append(True)
            continue
        parent = item.rel.rpartition("/")[0]
        excluded, info = match_path(patterns, item.rel, infos.get(parent))
        if stat.S_ISDIR(item.st.st_mode):
            infos[item.rel] = info
        kept.append(not excluded)
    needed = {item.rel.rpartition("/")[0]
              for item, keep in zip(items, kept, strict=True) if keep and item.rel}
    while True:  # the parents of what is kept are kept
        more = {path.rpartition("/")[0] for path in needed if path} - needed
        if not more:
            break
        needed |= more
    return [item for item, keep in zip(items, kept, strict=True) if keep or item.rel in needed]


def _item_digest(item: Item) -> str:
    """A copied entry's type, mode and content (or link target), for keys made from items."""
    st = item.st
    body = ""
    if stat.S_ISREG(st.st_mode):
        body = item.digest or sha256_file(item.real)
    elif stat.S_ISLNK(st.st_mode):
        body = os.readlink(item.real)
    text = f"{stat.S_IFMT(st.st_mode)}:{stat.S_IMODE(st.st_mode):o}\0{body}"
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _items_checksum(items: list[Item]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.rel}\0{_item_digest(item)}\n".encode("utf-8", "surrogateescape"))
    return "sha256:" + digest.hexdigest()


def _owner_key(chown: str | None) -> str | None:
    return None if chown is None else owner_key(chown)


def _as_written(flag: str) -> str:
    """What a flag's value was in the Dockerfile, when BuildKit read it otherwise: its parser
    takes a flag's bytes one by one as letters, so `--chown=josé` looks up "josÃ©"."""
    try:
        written = flag.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return ""
    if written == flag:
        return ""
    return f" (BuildKit reads a flag's non-ASCII letters byte by byte: {written!r} became {flag!r})"

