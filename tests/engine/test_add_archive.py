"""ADD of a local tar archive: extracted as Docker extracts it, in a real build, and refused with
the archive's name when it would write outside its directory."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

from .conftest import BASE, Project
from .test_copy_options import layer_files


def archive(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> None:
    with tarfile.open(path, mode) as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def member(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, uid: int = 0,
           linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = kind, mode, uid, uid
    info.mtime, info.linkname = 1_600_000_000, linkname
    return info


def test_a_compressed_archive_is_extracted_with_its_owners_and_modes(
    project: Callable[..., Project],
) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nADD app.tgz /opt/\n"
                                  "RUN stat -c '%n %u %a' /opt/app/run.sh /opt/app/.wh.keep"
                                  " && cat /opt/app/conf\n"})
    archive(proj.root / "app.tgz", [
        (member("app", tarfile.DIRTYPE, mode=0o750, uid=1000), b""),
        (member("app/run.sh", mode=0o4755, uid=1000), b"#!/bin/sh\n"),
        (member("app/conf"), b"port=80\n"),
        # A whiteout's name is only a name in an archive ADD extracts, as in Docker.
        (member("app/.wh.keep"), b""),
    ])
    built = proj.build()
    assert built.result.status == "succeeded", built.finished
    printed = "".join(e["text"] for e in built.events if e["type"] == "step.log")
    assert "/opt/app/run.sh 1000 4755" in printed
    assert "/opt/app/.wh.keep 0 644" in printed
    assert "port=80" in printed
    assert {"opt/app/run.sh", "opt/app/conf"} <= set(layer_files(proj.store, built, "ADD"))


def test_an_archive_that_climbs_out_is_refused_naming_it_and_writes_nothing(
    project: Callable[..., Project], tmp_path: Path,
) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nADD evil.tar /opt/\n"})
    archive(proj.root / "evil.tar", [(member("../../../../../../../../tmp/escaped"), b"gotcha\n")], mode="w")
    built = proj.build()
    assert built.result.status == "failed"
    error = built.finished["error"]
    assert error["line"] == 2 and "evil.tar" in error["message"] and "outside" in error["message"]
    assert not Path("/tmp/escaped").exists()


def test_an_archive_that_writes_through_its_own_symlink_is_refused(
    project: Callable[..., Project], tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    proj = project({"Dockerfile": f"FROM {BASE}\nADD sneaky.tar /opt/\n"})
    archive(proj.root / "sneaky.tar", [
        (member("door", tarfile.SYMTYPE, linkname=str(outside)), b""),
        (member("door/planted"), b"x\n"),
    ], mode="w")
    built = proj.build()
    assert built.result.status == "failed"
    assert "sneaky.tar" in built.finished["error"]["message"]
    assert list(outside.iterdir()) == []


def test_a_file_that_is_not_an_archive_is_copied_as_it_is(project: Callable[..., Project]) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nADD notes.tar.gz /srv/\n", "notes.tar.gz": "only text\n"})
    built = proj.build()
    assert built.result.status == "succeeded", built.finished
    assert layer_files(proj.store, built, "ADD")["srv/notes.tar.gz"] == b"only text\n"
