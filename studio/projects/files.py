"""The rules a project's file paths and sizes obey, and reading a context uploaded as tar or zip.

Paths are relative, `/`-separated, inside the context: nothing absolute, no `..`, no NUL, not
too deep. They are checked here once, so that materialising a revision into a directory can
never write outside it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

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
    # Rejected's details: never its `kind`.
    where: dict[str, Any]
    where = {"field": field} if field else {"file": raw if isinstance(raw, str) else repr(raw)}
    if not isinstance(raw, str) or not raw.strip():
        raise Rejected("a file path must be a non-empty string", **where)
    if _has_surrogates(raw):
        shown = printable_name(raw)
        where = {"field": field} if field else {"file": shown}
        raise Rejected(f"the path '{shown}' is not valid Unicode: it holds a lone surrogate", **where)
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
    """The files of a tar (plain or compressed) or zip archive, checked as they are read: every
    header's size before it is read, every member's size before its content is, and the counts of
    files and folders, the bytes unpacked and the names as they go, so that whatever the archive
    holds, reading it costs little more memory than the upload and the files it is allowed to give."""
    reader = _Reader()
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        reader.read_zip(data)
    else:
        reader.read_tar(data)
    check_tree(reader.entries, folders=reader.folders)
    return list(reader.entries.values())


def check_tree(paths: Iterable[str], *, beside: Iterable[str] = (), folders: Iterable[str] = ()) -> None:
    """Refuse (409, naming both) a path that would be a file and a folder at once: among `paths`,
    or between them and the files `beside` them (a project's other files). `folders` are paths
    that must stay folders (an archive's folder entries)."""
    files = set(paths)
    others = set(beside) - files
    everyone = files | others
    inside: dict[str, str] = {}  # each folder that some file needs -> one such file
    for path in everyone:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            inside.setdefault("/".join(parts[:depth]), path)
    for path in sorted(files):
        if path in inside:
            raise clash(path, inside[path])
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in others:
                raise clash(parent, path)
    for folder in sorted(set(folders) & everyone):
        raise clash(folder, f"{folder}/")


def clash(file: str, inside: str) -> Rejected:
    return Rejected(
        f"{file} cannot be both a file and a folder (holding {inside}): rename or remove one of them",
        kind="conflict",
        file=file,
    )


def printable_name(raw: bytes | str) -> str:
    """A name as it can be shown and sent as JSON: bytes that are not UTF-8 as \\x.. escapes."""
    if isinstance(raw, str):
        text = raw
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that stands for no byte: sent as such in JSON
            raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


# The headers tar uses to say more about the member after them: GNU long names and link names,
# pax extended (per member, and Solaris' old spelling) and global headers.
_NAME_HEADERS = {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
_PAX_HEADERS = {tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.XGLTYPE}
# A path is at most MAX_PATH_CHARS characters of up to 4 bytes; a pax header holds a few more
# records (times, owners, a comment of git's). Far more than any real archive needs.
MAX_HEADER_BYTES = 64 << 10
MAX_HEADERS_IN_A_ROW = 4  # GNU: long name, long link; pax: global then extended
MAX_GLOBAL_HEADERS = 4  # git archive writes one; each is kept for the rest of the archive
ZIP_MAX_RATIO = 1000  # what deflate gives at best (about 1032:1); a bomb's members go far past it
ZIP_RATIO_FROM = 1 << 20  # only members that unpack to more than this are held to it


# What reading a damaged archive raises from the standard library (a zip's negative offset is a
# ValueError, a cut-off struct a struct.error): each means "cannot be read", a 400.
_UNREADABLE = (OSError, EOFError, ValueError, RuntimeError, struct.error, zlib.error, lzma.LZMAError)


class _BoundedInfo(tarfile.TarInfo):
    """A tar header whose extension headers are size-checked before tarfile reads them: tarfile
    itself reads a long-name or pax record whole, whatever size it declares."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:  # tarfile's extension point
        assert isinstance(tar, _BoundedTar)
        if self.type in _NAME_HEADERS or self.type in _PAX_HEADERS:
            tar.headers_in_a_row += 1
            if self.size > MAX_HEADER_BYTES or tar.headers_in_a_row > MAX_HEADERS_IN_A_ROW:
                raise _bad_header(self, tar)
            if self.type == tarfile.XGLTYPE:
                tar.global_headers += 1
                if tar.global_headers > MAX_GLOBAL_HEADERS:
                    raise _bad_header(self, tar)
        else:
            tar.headers_in_a_row = 0
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise Rejected(
                f"{printable_name(self.name)} is a sparse file: a context upload may hold only plain "
                "files and folders",
                file=printable_name(self.name),
            )
        return super()._proc_member(tar)  # type: ignore[misc]


def _bad_header(info: tarfile.TarInfo, tar: _BoundedTar) -> Rejected:
    kind = "long name" if info.type in _NAME_HEADERS else "pax"
    why = (
        f"declares {_mb(info.size)} (at most {_mb(MAX_HEADER_BYTES)})"
        if info.size > MAX_HEADER_BYTES
        else "follows too many others of its kind"
    )
    # The member it belongs to has not been read yet: the header's place names it.
    where = f"the {kind} header at byte {info.offset} of the archive"
    return Rejected(f"{where} {why}", kind="too_large", file=where, limit="tar_header_bytes")


class _BoundedTar(tarfile.TarFile):
    tarinfo = _BoundedInfo
    members: list[tarfile.TarInfo]  # the members read so far (typeshed leaves it out)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.headers_in_a_row = 0
        self.global_headers = 0
        super().__init__(*args, **kwargs)


class _Unpacked(io.RawIOBase):
    """A decompressing stream that refuses to give more than `limit` bytes: a small compressed
    upload may unpack to gigabytes of headers or skipped content."""

    def __init__(self, inner: io.BufferedIOBase, limit: int) -> None:
        super().__init__()
        self.inner, self.limit, self.count = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise Rejected(
                f"the archive unpacks to more than {_mb(self.limit)}, more than the project's files "
                "may take (STUDIO_PROJECT_MAX_BYTES)",
                kind="too_large",
                limit="unpacked_bytes",
                max=self.limit,
            )
        buffer[: len(data)] = data
        return len(data)


def _decompressed(data: bytes) -> io.BufferedIOBase:
    raw = io.BytesIO(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)
    if data[:3] == b"BZh":
        return bz2.BZ2File(raw)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw)
    return raw


def _max_folders() -> int:
    return settings.PROJECT_MAX_FILES


def _unpacked_limit() -> int:
    # The files, plus each member's header (a pax one too) and padding, plus the closing blocks.
    members = settings.PROJECT_MAX_FILES + _max_folders()
    return settings.PROJECT_MAX_BYTES + members * 4096 + (1 << 20)


class _Reader:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.folders: set[str] = set()
        self.folder_entries = 0
        self.total = 0

    def name(self, raw: str) -> str:
        """The member's path, checked; a name that is not UTF-8 (read with surrogateescape, so its
        bad bytes are lone surrogates) is refused naming it."""
        if _has_surrogates(raw):
            shown = printable_name(raw)
            raise Rejected(f"the name '{shown}' is not UTF-8: rename it", file=shown)
        return clean_path(raw)

    def add(self, raw_name: str, size: int, read: IO[bytes], mode: int) -> None:
        path = self.name(raw_name)
        if path in self.entries:
            raise Rejected(f"{path} is in the archive twice: keep one of them", file=path)
        check_file_size(path, size)
        check_totals(len(self.entries) + 1, self.total + size)
        data = _read_at_most(read, size + 1)
        # A zip's sizes are the archive's word for it; what counts is what comes out.
        check_file_size(path, len(data))
        self.total += len(data)
        check_totals(len(self.entries) + 1, self.total)
        self.entries[path] = Entry(path, data, file_mode(mode))

    def add_folder(self, raw_name: str) -> None:
        self.folder_entries += 1
        if self.folder_entries > _max_folders():
            raise Rejected(
                f"the archive holds more than {_max_folders()} folder entries "
                f"(at {printable_name(raw_name)}); at most as many as files are allowed "
                "(STUDIO_PROJECT_MAX_FILES)",
                kind="too_large",
                file=printable_name(raw_name),
                limit="archive_folders",
                max=_max_folders(),
            )
        path = self.name(raw_name.rstrip("/") + "/x")  # a folder escaping the context is refused too
        self.folders.add(path[: -len("/x")])

    def read_tar(self, data: bytes) -> None:
        try:
            stream = _Unpacked(_decompressed(data), _unpacked_limit())
            with _BoundedTar.open(
                fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape"
            ) as tar:
                while (member := tar.next()) is not None:
                    tar.members.clear()  # tarfile keeps every member it has read; nothing here needs them
                    self._tar_member(tar, member)
        except (tarfile.TarError, *_UNREADABLE) as exc:
            raise Rejected(f"the upload is neither a tar nor a zip archive that can be read: {exc}") from None

    def _tar_member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if member.isdir():
            self.add_folder(member.name)
            return
        if not member.isfile():
            kind = "a symbolic link" if member.issym() else "a hard link" if member.islnk() else "not a file"
            shown = printable_name(member.name)
            raise Rejected(
                f"{shown} is {kind}: a context upload may hold only files and folders",
                file=shown,
            )
        extracted = tar.extractfile(member)
        assert extracted is not None  # a regular file always has content to extract
        self.add(member.name, member.size, extracted, member.mode)

    def read_zip(self, data: bytes) -> None:
        try:
            _check_zip_directory(data)
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                infos = archive.infolist()
                if any(not info.filename for info in infos):  # a damaged name's length can say 0
                    raise Rejected("a member of the zip archive has no name: the archive is damaged")
                self._check_zip_sizes(infos)
                for info in infos:
                    self._zip_member(archive, info)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, *_UNREADABLE) as exc:
            raise Rejected(f"the upload is not a zip archive that can be read: {exc}") from None

    def _check_zip_sizes(self, infos: list[zipfile.ZipInfo]) -> None:
        """Sizes and ratios from the central directory, before a byte is unpacked."""
        files = [info for info in infos if not info.is_dir()]
        check_totals(len(files), sum(info.file_size for info in files))
        for info in files:
            check_file_size(printable_name(info.filename), info.file_size)
            if info.flag_bits & 0x1:
                raise Rejected(f"{info.filename} is encrypted: upload it unencrypted", file=info.filename)
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > ZIP_RATIO_FROM and ratio > ZIP_MAX_RATIO:
                raise Rejected(
                    f"{info.filename} would unpack to {ratio:.0f} times its packed size (at most "
                    f"{ZIP_MAX_RATIO}): it looks like a zip bomb",
                    kind="too_large",
                    file=info.filename,
                    limit="zip_ratio",
                    max=ZIP_MAX_RATIO,
                )

    def _zip_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        unix_mode = info.external_attr >> 16 if info.create_system == 3 else 0
        if info.is_dir():
            self.add_folder(info.filename)
            return
        # Zips made by Python and some tools leave the file type out of the mode; only a type that
        # is there and is not "regular file" is refused.
        if stat.S_IFMT(unix_mode) not in (0, stat.S_IFREG):
            kind = "a symbolic link" if stat.S_ISLNK(unix_mode) else "not a file"
            raise Rejected(
                f"{info.filename} is {kind}: a context upload may hold only files and folders",
                file=info.filename,
            )
        self.name(info.filename)  # before opening: a bad name is refused without reading a byte
        with archive.open(info) as member:
            self.add(info.filename, info.file_size, member, unix_mode or 0o644)


_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")


def _check_zip_directory(data: bytes) -> None:
    """Count the central directory's entries and measure their names before zipfile reads it:
    zipfile makes an object of every entry it lists, however many the directory holds."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD.size - 0xFFFF))
    if end < 0 or end + _EOCD.size > len(data):
        raise Rejected("the upload is not a zip archive that can be read: it has no central directory")
    size = _EOCD.unpack_from(data, end)[5]
    start = end - size
    locator = end - _EOCD64_LOCATOR.size
    if locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        record = locator - _EOCD64.size
        if record < 0 or data[record : record + 4] != b"PK\x06\x06":
            raise Rejected("the upload is not a zip archive that can be read: its zip64 record is missing")
        size = _EOCD64.unpack_from(data, record)[7]
        start = record - size
    if start < 0:
        raise Rejected("the upload is not a zip archive that can be read: its central directory is cut short")
    limit = settings.PROJECT_MAX_FILES + _max_folders()
    position, count = start, 0
    while position + _CENTRAL.size <= start + size:
        fields = _CENTRAL.unpack_from(data, position)
        if fields[0] != b"PK\x01\x02":
            break
        count += 1
        name_len, extra_len, comment_len = fields[12], fields[13], fields[14]
        name = data[position + _CENTRAL.size : position + _CENTRAL.size + min(name_len, 80)]
        if count > limit:
            raise Rejected(
                f"the archive lists more than {limit} files and folders (at {printable_name(name)}); "
                "at most STUDIO_PROJECT_MAX_FILES files and as many folders are allowed",
                kind="too_large",
                file=printable_name(name),
                limit="archive_entries",
                max=limit,
            )
        if name_len > MAX_PATH_CHARS * 4:
            raise Rejected(
                f"the name {printable_name(name)!r}… is {name_len} bytes long "
                f"(at most {MAX_PATH_CHARS} characters)",
                file=printable_name(name),
            )
        position += _CENTRAL.size + name_len + extra_len + comment_len


def _read_at_most(read: IO[bytes], limit: int) -> bytes:
    # In pieces: tarfile's stream joins whatever one read asks for, a copy or two more of it.
    buffer = bytearray()
    while len(buffer) < limit:
        piece = read.read(min(1 << 16, limit - len(buffer)))
        if not piece:
            break
        buffer += piece
    return bytes(buffer)


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def _mb(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.1f} KB"
    return f"{size} bytes"
