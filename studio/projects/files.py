"""The rules a project's file paths and sizes obey, and reading a context uploaded as tar or zip.

Paths are relative, `/`-separated, inside the context: nothing absolute, no `..`, no NUL, not
too deep. They are checked here once, so that materialising a revision into a directory can
never write outside it.
"""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from typing import IO

from django.conf import settings

from studio.errors import Rejected

MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class Entry:
    path: str
    data: bytes
    mode: int


def clean_path(raw: object, *, field: str | None = None) -> str:
    """The path in its one canonical spelling (`./a//b/` is `a/b`), or Rejected naming it."""
    where = {"field": field} if field else {"file": raw if isinstance(raw, str) else repr(raw)}
    if not isinstance(raw, str) or not raw.strip():
        raise Rejected("a file path must be a non-empty string", **where)
    if "\x00" in raw:
        raise Rejected(f"the path {raw!r} contains a NUL character", **where)
    if "\\" in raw:
        raise Rejected(f"the path {raw!r} contains a backslash: separate folders with /", **where)
    if raw.startswith("/"):
        raise Rejected(f"the path {raw!r} is absolute: paths are relative to the context", **where)
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Rejected(f"the path {raw!r} escapes the context (it contains ..)", **where)
    if not parts:
        raise Rejected(f"the path {raw!r} names no file", **where)
    depth = settings.PROJECT_PATH_MAX_DEPTH
    if len(parts) > depth:
        raise Rejected(
            f"the path {raw!r} is {len(parts)} levels deep; at most {depth} are allowed",
            **where,
            limit="path_depth",
        )
    path = "/".join(parts)
    if len(path) > MAX_PATH_CHARS or any(len(part) > MAX_NAME_CHARS for part in parts):
        raise Rejected(
            f"the path {raw[:80]!r}… is too long (at most {MAX_PATH_CHARS} characters, "
            f"{MAX_NAME_CHARS} per name)",
            **where,
        )
    return path


def check_file_size(path: str, size: int) -> None:
    limit = settings.PROJECT_FILE_MAX_BYTES
    if size > limit:
        raise Rejected(
            f"{path} is {_mb(size)}; a file may be at most {_mb(limit)} (STUDIO_PROJECT_FILE_MAX_BYTES)",
            kind="too_large",
            file=path,
            limit="file_bytes",
            max=limit,
        )


def check_totals(files: int, size: int) -> None:
    """A whole project's file count and size, against the limits."""
    if files > settings.PROJECT_MAX_FILES:
        raise Rejected(
            f"the project would have {files} files; at most {settings.PROJECT_MAX_FILES} are allowed "
            "(STUDIO_PROJECT_MAX_FILES)",
            kind="too_large",
            limit="project_files",
            max=settings.PROJECT_MAX_FILES,
        )
    if size > settings.PROJECT_MAX_BYTES:
        raise Rejected(
            f"the project's files would take {_mb(size)}; at most {_mb(settings.PROJECT_MAX_BYTES)} are "
            "allowed (STUDIO_PROJECT_MAX_BYTES)",
            kind="too_large",
            limit="project_bytes",
            max=settings.PROJECT_MAX_BYTES,
        )


def upload_too_large(size: int | None = None) -> Rejected:
    limit = settings.UPLOAD_MAX_BYTES
    said = f" ({_mb(size)})" if size is not None else ""
    return Rejected(
        f"the upload{said} is larger than the {_mb(limit)} an upload may be (STUDIO_UPLOAD_MAX_BYTES)",
        kind="too_large",
        limit="upload_bytes",
        max=limit,
    )


def file_mode(mode: int) -> int:
    # Permission bits only: a setuid bit or a file type has no business in a context.
    return (mode & 0o777) or 0o644


def read_archive(data: bytes) -> list[Entry]:
    """The files of a tar (plain or compressed) or zip archive, checked file by file as they are
    read, so a bomb stops at the first file over a limit rather than after filling the memory."""
    reader = _Reader()
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        reader.read_zip(data)
    else:
        reader.read_tar(data)
    return list(reader.entries.values())


class _Reader:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}  # a path given twice: the later one wins, as tar has it
        self.total = 0

    def add(self, raw_name: str, size: int, read: IO[bytes], mode: int) -> None:
        path = clean_path(raw_name)
        check_file_size(path, size)
        data = read.read(size + 1)
        # A zip's sizes are the archive's word for it; what counts is what comes out.
        check_file_size(path, len(data))
        previous = self.entries.pop(path, None)
        self.total += len(data) - (len(previous.data) if previous else 0)
        self.entries[path] = Entry(path, data, file_mode(mode))
        check_totals(len(self.entries), self.total)

    def read_tar(self, data: bytes) -> None:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                for member in tar:
                    self._tar_member(tar, member)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise Rejected(f"the upload is neither a tar nor a zip archive that can be read: {exc}") from None

    def _tar_member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if member.isdir():
            clean_path(member.name + "/x")  # a folder escaping the context is refused all the same
            return
        if not member.isfile():
            kind = "a symbolic link" if member.issym() else "a hard link" if member.islnk() else "not a file"
            raise Rejected(
                f"{member.name} is {kind}: a context upload may hold only files and folders",
                file=member.name,
            )
        extracted = tar.extractfile(member)
        assert extracted is not None  # a regular file always has content to extract
        self.add(member.name, member.size, extracted, member.mode)

    def read_zip(self, data: bytes) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    self._zip_member(archive, info)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, RuntimeError) as exc:
            raise Rejected(f"the upload is not a zip archive that can be read: {exc}") from None

    def _zip_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        unix_mode = info.external_attr >> 16 if info.create_system == 3 else 0
        if info.is_dir():
            clean_path(info.filename.rstrip("/") + "/x")
            return
        # Zips made by Python and some tools leave the file type out of the mode; only a type that
        # is there and is not "regular file" is refused.
        if stat.S_IFMT(unix_mode) not in (0, stat.S_IFREG):
            kind = "a symbolic link" if stat.S_ISLNK(unix_mode) else "not a file"
            raise Rejected(
                f"{info.filename} is {kind}: a context upload may hold only files and folders",
                file=info.filename,
            )
        clean_path(info.filename)  # before opening: a bad name is refused without reading a byte
        with archive.open(info) as member:
            self.add(info.filename, info.file_size, member, unix_mode or 0o644)


def _mb(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.1f} KB"
    return f"{size} bytes"
