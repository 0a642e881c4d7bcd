"""The build context as a tree: walking it, placing COPY sources, and content checksums.

Checksums follow BuildKit's content hash: a file's checksum covers its content and its
permission bits and type (not its mtime, not its owner); a symlink's covers its target text;
a directory's covers its own mode and, recursively and sorted by name, every entry under it
that .dockerignore does not exclude (empty directories count). The top-level directory a COPY
names contributes only its contents, since its contents are what is copied.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ContextError
from .hashcache import HashCache
from .ignore import (
    BadPattern,
    Listing,
    MatchInfo,
    any_pattern,
    go_glob,
    has_wildcards,
    match_path,
    parse_dockerignore,
    reinclude_stems,
)
from .reading import EscapesContext, read_inside

MAX_SYMLINK_HOPS = 40  # as Linux's own limit on links followed while resolving one path


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the context root, posix separators, no leading "./" ("" is the root)
    kind: str  # "file" | "dir" | "symlink"
    mode: int  # permission bits: st_mode & 0o7777
    size: int  # bytes for files, 0 otherwise
    digest: str  # "sha256:<hex>" per the rules above
    target: str = ""  # symlink target text
    # The path a COPY named, when it is a symlink that resolve() followed to this entry: the
    # copy takes that name (BuildKit names the destination after the source as written).
    source: str = ""


# -- the context -----------------------------------------------------------------------------------
def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # names that are not UTF-8 keep their bytes


# A file or symlink as its directory's digest reads it: (kind, mode, size, content digest or
# link target). Directories fold these texts in directly and Entry objects are made only when
# asked for, since a cached rebuild needs no more than the digests.
Leaf = tuple[str, int, int, str]


def _leaf_text(leaf: Leaf) -> str:
    kind, mode, _, body = leaf
    return f"file:{mode:o}\0{body}" if kind == "file" else f"link\0{body}"


def _leaf_entry(rel: str, leaf: Leaf) -> Entry:
    kind, mode, size, body = leaf
    digest = "sha256:" + hashlib.sha256(_utf8(_leaf_text(leaf))).hexdigest()
    return Entry(rel, kind, mode, size, digest, body if kind == "symlink" else "")


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(_utf8(text)).hexdigest()


@dataclass
class _Where:
    """Where a COPY source was named, for its errors."""

    src: str
    file: str
    line: int | None
    keyword: str | None

    def error(self, message: str) -> ContextError:
        subject = f'{self.keyword} source "{self.src}"' if self.keyword else f'source "{self.src}"'
        error = ContextError(f"{subject} {message}", file=self.file, line=self.line)
        error.with_details(source=self.src)
        return error



class BuildContext:
    """A directory sent as the build context. Reads `.dockerignore` at its root (or, when
    `dockerfile` is given and `<dockerfile>.dockerignore` exists beside it, that one, as
    BuildKit does). Everything is read lazily and remembered: build one per build."""

    root: Path

    def __init__(
        self, root: Path | str, *, hash_cache: HashCache | None = None, dockerfile: Path | None = None,
        ignore_limit: int = 256 << 10,
    ) -> None:
        self.root = Path(root).resolve()
        self.spelled_root = Path(root)  # as given, perhaps through a link
        self._root = str(self.root)
        self.ignore_limit = ignore_limit  # the largest .dockerignore read
        self.hash_cache = hash_cache if hash_cache is not None else HashCache()
        self.ignore_file, text = self._read_ignore_file(dockerfile)
        self.patterns = parse_dockerignore(text, file=self.ignore_file)
        self.has_exceptions = any(p.exclusion for p in self.patterns)
        self._stems = reinclude_stems(self.patterns)
        self._any_pattern = any_pattern(self.patterns)
        # dir -> (excluded, per-pattern results for its children); the root is never excluded
        self._infos: dict[str, tuple[bool, MatchInfo | None]] = {"": (False, None)}
        # dir -> name -> (its DirEntry, excluded): files and links .dockerignore keeps, all dirs
        self._listings: dict[str, Listing] = {}
        self._subdirs: dict[str, list[str]] = {}  # dir -> its directories' names, in listing order
        self._has_visible: dict[str, bool] = {}
        self._entries: dict[str, Entry | None] = {}
        self._leaves: dict[str, Leaf | None] = {}
        self._contents: dict[str, str] = {}  # dir -> the text of its children, as its digest read it
        self._children: dict[str, list[str]] = {}

    def _read_ignore_file(self, dockerfile: Path | None) -> tuple[str, str]:
        candidates = [self.root / ".dockerignore"]
        if dockerfile is not None:
            candidates.insert(0, Path(dockerfile).with_name(Path(dockerfile).name + ".dockerignore"))
        for path in candidates:
            try:
                data = read_inside(self.root, path, limit=self.ignore_limit, what=path.name,
                                   spelled_root=self.spelled_root)
            except EscapesContext:
                continue  # a link out of the context: its text is not the user's to show
            except OSError:
                continue
            return path.name, data.decode("utf-8", "surrogateescape")
        return ".dockerignore", ""

    # -- .dockerignore -----------------------------------------------------------------------------
    def ignored(self, rel: str) -> bool:
        """True when .dockerignore excludes `rel`: the last pattern matching it, or one of its
        parent directories, decides."""
        if not self.patterns or not rel:
            return False
        parent = rel.rpartition("/")[0]
        return match_path(self.patterns, rel, self._dir_info(parent)[1])[0]

    def _dir_info(self, rel: str) -> tuple[bool, MatchInfo | None]:
        """(excluded, results for its children) of directory `rel`, from the top down."""
        missing = []
        while rel not in self._infos:
            missing.append(rel)
            rel = rel.rpartition("/")[0]
        for path in reversed(missing):
            parent_info = self._infos[path.rpartition("/")[0]][1]
            self._infos[path] = match_path(self.patterns, path, parent_info)
        return self._infos[missing[0] if missing else rel]

    def _may_reinclude(self, rel: str) -> bool:
        if self._stems is None:
            return True
        prefix = rel + "/"
        return any(stem.startswith(prefix) for stem in self._stems)

    # -- listing -----------------------------------------------------------------------------------
    def _listing(self, rel: str) -> Listing:
        """The entries of directory `rel` that can be in the context. `rel` must be a real
        directory of the context (no symlink on the way), which every caller makes sure of."""
        found = self._listings.get(rel)
        if found is not None:
            return found
        items: Listing = {}
        subdirs: list[str] = []
        excluded, info = self._dir_info(rel) if self.patterns else (False, None)
        if not excluded or (self.has_exceptions and self._may_reinclude(rel)):
            try:
                with os.scandir(self.path(rel)) as it:
                    self._fill(rel, it, info, items, subdirs)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as exc:
                if not excluded:
                    raise ContextError(
                        f'cannot read "{rel or "."}" in the build context: {exc.strerror}'
                    ) from None
        self._listings[rel] = items
        self._subdirs[rel] = subdirs
        return items

    def _fill(
        self,
        rel: str,
        it: Iterator[os.DirEntry[str]],
        info: MatchInfo | None,
        items: Listing,
        subdirs: list[str],
    ) -> None:
        """One directory's entries into `items`: the loop every file of a context goes
        through, so it keeps to local names."""
        patterns, infos = self.patterns, self._infos
        prefix = rel + "/" if rel else ""
        # Without a match handed down, a file no pattern matches is kept: one regex call.
        quick = self._any_pattern.match if self._any_pattern is not None and not any(info or ()) else None
        for item in it:
            name = item.name
            if item.is_dir(follow_symlinks=False):
                excluded = False
                if patterns:
                    found = infos[prefix + name] = match_path(patterns, prefix + name, info)
                    excluded = found[0]
                items[name] = (item, excluded)
                subdirs.append(name)
                continue
            if not item.is_file(follow_symlinks=False) and not item.is_symlink():
                continue  # sockets, fifos and devices are not part of a context
            path = prefix + name
            if not patterns or (quick and not quick(path)) or not match_path(patterns, path, info)[0]:
                items[name] = (item, False)

    def _visible_below(self, top: str) -> bool:
        """Whether an excluded directory holds something the context keeps (then fsutil sends
        the directory too). Iterative: excluded trees can be deep."""
        known = self._has_visible.get(top)
        if known is not None:
            return known
        stack, seen = [top], []
        while stack:
            rel = stack.pop()
            seen.append(rel)
            for name, (_, excluded) in self._listing(rel).items():
                child = _join(rel, name)
                if not excluded or self._has_visible.get(child):
                    self._has_visible[top] = True
                    return True
                if child not in self._has_visible:
                    stack.append(child)
        for rel in seen:
            self._has_visible[rel] = False
        return False

    def children(self, rel: str) -> list[str]:
        """Names of the visible entries in directory `rel`, sorted."""
        found = self._children.get(rel)
        if found is not None:
            return found
        names = sorted(
            name
            for name, (_, excluded) in self._listing(rel).items()
            if not excluded or self._visible_below(_join(rel, name))
        )
        self._children[rel] = names
        return names

    # -- entries -----------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        """Where the context's `rel` is on this machine ("" is the root)."""
        return f"{self._root}/{rel}" if rel else self._root

    def entry(self, rel: str) -> Entry | None:
        """The visible entry at `rel` (no symlink followed), or None."""
        if rel in self._entries:
            return self._entries[rel]
        if rel == "":
            return self._tree_entry("")
        item = self._item(rel)
        if item is None:
            found = None
        elif item[0].is_dir(follow_symlinks=False):
            visible = not item[1] or self._visible_below(rel)
            return self._tree_entry(rel) if visible else self._remember(rel, None)
        else:
            leaf = self._leaves[rel] if rel in self._leaves else self._leaf(rel, item[0])
            found = _leaf_entry(rel, leaf) if leaf is not None else None
        return self._remember(rel, found)

    def _remember(self, rel: str, found: Entry | None) -> Entry | None:
        self._entries[rel] = found
        return found

    def _item(self, rel: str) -> tuple[os.DirEntry[str], bool] | None:
        """The listing item of `rel` when each directory above it is a real directory."""
        parts = rel.split("/")
        parent = ""
        for name in parts[:-1]:
            above = self._listing(parent).get(name)
            if above is None or not above[0].is_dir(follow_symlinks=False):
                return None
            parent = _join(parent, name)
        return self._listing(parent).get(parts[-1])

    def _leaf(self, rel: str, item: os.DirEntry[str]) -> Leaf | None:
        try:
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                leaf: Leaf | None = ("symlink", st.st_mode & 0o7777, 0, os.readlink(item.path))
            else:
                leaf = ("file", st.st_mode & 0o7777, st.st_size, self.hash_cache.file_digest(item.path, st))
        except FileNotFoundError:
            leaf = None  # removed while the build was reading the context
        except OSError as exc:
            raise ContextError(f'cannot read "{rel}" in the build context: {exc.strerror}') from None
        self._leaves[rel] = leaf
        return leaf

    def stat(self, rel: str) -> os.stat_result:
        """The stat of the visible entry `rel` as the context read it (a file's is the one its
        digest was taken with: a listing's DirEntry keeps its first stat)."""
        if rel == "":
            return os.lstat(self._root)
        parent, _, name = rel.rpartition("/")
        return self._listing(parent)[name][0].stat(follow_symlinks=False)

    def content_digest(self, rel: str) -> str:
        """sha256 hex of the content of the context file `rel`, read when its stat was stat(rel)."""
        if rel not in self._leaves:
            parent, _, name = rel.rpartition("/")
            self._leaf(rel, self._listing(parent)[name][0])
        leaf = self._leaves[rel]
        if leaf is None or leaf[0] != "file":
            raise ContextError(f'"{rel}" is no longer a file in the build context')
        return leaf[3]

    def _dir_mode(self, rel: str) -> int:
        if rel == "":
            return stat.S_IMODE(os.lstat(self._root).st_mode)
        parent, _, name = rel.rpartition("/")
        return stat.S_IMODE(self._listing(parent)[name][0].stat(follow_symlinks=False).st_mode)

    def _tree_entry(self, top: str) -> Entry | None:
        """The directory `top` with every entry below it, children before parents, without
        recursion (a context can nest deeper than Python's stack)."""
        self._prefetch_digests(top)
        stack = [top]
        while stack:
            rel = stack[-1]
            if rel in self._entries:
                stack.pop()
                continue
            names = self.children(rel)
            listing = self._listing(rel)
            prefix = rel + "/" if rel else ""
            pending = [
                prefix + name
                for name in self._subdirs[rel]
                if prefix + name not in self._entries
                and (not listing[name][1] or self._visible_below(prefix + name))
            ]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self._entries[rel] = self._dir_entry(rel, names, listing)
        return self._entries[top]

    def _prefetch_digests(self, top: str) -> None:
        """Take the digests of the files below `top` that making its entry asks for: those the
        hash cache knows become leaves here, in one pass; the others it hashes several at a
        time, for _leaf to find."""
        files: list[tuple[str, os.stat_result]] = []
        rels: list[str] = []
        stack = [top]
        while stack:
            rel = stack.pop()
            prefix = rel + "/" if rel else ""
            for name, (item, excluded) in self._listing(rel).items():
                child = prefix + name
                if child in self._entries or child in self._leaves:
                    continue
                try:
                    if item.is_dir(follow_symlinks=False):
                        if not excluded or self._visible_below(child):
                            stack.append(child)
                    elif item.is_file(follow_symlinks=False):
                        files.append((item.path, item.stat(follow_symlinks=False)))
                        rels.append(child)
                except OSError:
                    continue  # _leaf meets it again and says what is wrong
        known = self.hash_cache.prefetch(files)
        leaves = self._leaves
        for (path, st), rel in zip(files, rels, strict=True):
            digest = known.get(path)
            if digest is not None:  # what _leaf would make of it, from the same stat
                leaves[rel] = ("file", st.st_mode & 0o7777, st.st_size, digest)

    def _dir_entry(self, rel: str, names: list[str], listing: Listing) -> Entry:
        """A directory whose subdirectories are done. Its contents' text is one record per
        child, each field ended by NUL, which no name or link target can hold."""
        parts: list[str] = []
        kept: list[str] = []
        entries, leaves, prefix = self._entries, self._leaves, (rel + "/" if rel else "")
        for name in names:
            child = prefix + name
            sub = entries.get(child)
            if sub is not None and sub.kind == "dir":  # files may be there too, asked for by name
                parts.append(f"{name}\0{sub.digest}\0")
            else:
                leaf = leaves[child] if child in leaves else self._leaf(child, listing[name][0])
                if leaf is None:
                    continue
                # _leaf_text, inlined: this runs once for every file of the context.
                parts.append(f"{name}\0file:{leaf[1]:o}\0{leaf[3]}\0" if leaf[0] == "file"
                             else f"{name}\0link\0{leaf[3]}\0")
            kept.append(name)
        if len(kept) != len(names):
            self._children[rel] = kept
        text = self._contents[rel] = "".join(parts)
        mode = self._dir_mode(rel)
        return Entry(rel, "dir", mode, 0, _digest(f"dir:{mode:o}\0{text}"))

    # -- what COPY reads ---------------------------------------------------------------------------
    def resolve(
        self, src: str, *, file: str = "Dockerfile", line: int | None = None, keyword: str | None = None
    ) -> list[Entry]:
        """A COPY/ADD source (a path or a glob) -> the matching top-level entries, sorted."""
        where = _Where(src, file, line, keyword)
        rel = posixpath.normpath(src.lstrip("/") or ".")
        if rel == ".." or rel.startswith("../"):
            raise where.error("is outside the build context")
        rel = "" if rel == "." else rel
        parts = rel.split("/") if rel else []
        first_glob = next((i for i, part in enumerate(parts) if has_wildcards(part)), None)
        if first_glob is None:
            entries = [self._named(rel, where)]
        else:
            entries = self._glob(parts[:first_glob], parts[first_glob:], where)
        return sorted(entries, key=lambda e: e.source or e.path)

    def _named(self, rel: str, where: _Where) -> Entry:
        real, links = self._follow(rel, where)
        found = self.entry(real) if real is not None else None
        if found is None:
            raise self._not_found(rel, links, where)
        return replace(found, source=rel) if real != rel else found

    def _glob(self, head: list[str], tail: list[str], where: _Where) -> list[Entry]:
        base, links = self._follow("/".join(head), where)
        if base is None or not self._is_dir(base):
            raise self._not_found("/".join(head), links, where)
        matches = [base]
        for segment in tail:
            try:
                regex = go_glob(segment)
            except BadPattern:
                raise where.error("is not a valid pattern (syntax error in pattern)") from None
            matches = [
                _join(rel, name)
                for rel in matches
                if self._is_dir(rel)
                for name in self.children(rel)
                if regex.match(name)
            ]
        if not matches:
            raise where.error("matches no file in the build context" + self._ignore_hint())
        return [self._named(rel, where) for rel in matches]

    def _is_dir(self, rel: str) -> bool:
        if rel == "":
            return True
        item = self._item(rel)
        return item is not None and item[0].is_dir(follow_symlinks=False)

    def _follow(self, rel: str, where: _Where) -> tuple[str | None, list[tuple[str, str]]]:
        """`rel` with every symlink on it followed inside the context (an absolute target
        starts again from the context's root, as BuildKit reads it), or None when something
        on the way is missing or ignored; and the links followed. ContextError when a link
        leads above the root."""
        todo = rel.split("/")[::-1] if rel else []
        done: list[str] = []
        links: list[tuple[str, str]] = []
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not done:
                    link, target = links[-1]
                    raise where.error(
                        f'leads outside the build context through the symbolic link "{link}" -> "{target}"'
                    )
                done.pop()
                continue
            parent = "/".join(done)
            item = self._listing(parent).get(name)
            if item is None:
                return None, links
            if item[0].is_symlink():
                if len(links) >= MAX_SYMLINK_HOPS:
                    raise where.error("goes through too many levels of symbolic links")
                target = os.readlink(item[0].path)
                links.append((_join(parent, name), target))
                if target.startswith("/"):
                    done = []
                todo.extend(target.split("/")[::-1])
                continue
            if todo and not item[0].is_dir(follow_symlinks=False):
                return None, links
            done.append(name)
        return "/".join(done), links

    def _not_found(self, rel: str, links: list[tuple[str, str]], where: _Where) -> ContextError:
        if links:
            link, target = links[-1]
            return where.error(
                f'is not in the build context: the symbolic link "{link}" points to "{target}", '
                "which the context does not hold"
            )
        if rel and self.ignored(rel) and os.path.lexists(self.path(rel)):
            return where.error(f"is excluded by {self.ignore_file}, so it is not in the build context")
        return where.error("not found in the build context")

    def _ignore_hint(self) -> str:
        return f" (files {self.ignore_file} excludes do not count)" if self.patterns else ""

    def walk(self, entry: Entry) -> Iterator[Entry]:
        """`entry` itself and, for a directory, every visible entry below it, parents first."""
        stack = [entry]
        while stack:
            current = stack.pop()
            yield current
            if current.kind == "dir":
                below = (self.entry(_join(current.path, name)) for name in self.children(current.path))
                stack.extend(reversed([e for e in below if e is not None]))

    def checksum(self, entries: list[Entry]) -> str:
        """One "sha256:<hex>" over the given top-level entries, as a COPY of them is keyed."""
        h = hashlib.sha256()
        for entry in entries:
            if entry.kind == "dir":
                self._tree_entry(entry.path)
                h.update(_utf8(self._contents[entry.path]))
            else:
                h.update(_utf8(f"{posixpath.basename(entry.source or entry.path)}\0{entry.digest}\0"))
        return "sha256:" + h.hexdigest()

    def manifest(self, entries: list[Entry]) -> dict[str, str]:
        """Every path under the given entries -> its digest: what a COPY read, so a later build
        can say which files changed, appeared or vanished. Directories count by their mode
        only, so a changed file is not reported once more as each of its parents."""
        out: dict[str, str] = {}
        for top in entries:
            for entry in self.walk(top):
                if entry is top and entry.kind == "dir":
                    continue
                out[entry.path] = f"dir:{entry.mode:o}" if entry.kind == "dir" else entry.digest
        return out
