"""Archives written to hurt the server: each is refused with 413 or 400 naming what was wrong, and
reading it costs the web process little more memory than the upload, whatever it declares. Memory
is measured with tracemalloc around the one call that reads the archive."""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from studio.errors import Rejected
from studio.projects.files import read_archive
from tests.archives import (
    END,
    filler,
    gzipped,
    header_bomb,
    member,
    pax_record,
    tar_header,
    zip_of_folders,
)
from tests.projects.test_projects import Api, tar_of

pytestmark = pytest.mark.django_db

MB = 1 << 20


def peak_while(read: Callable[[], Any]) -> tuple[int, Any]:
    """The most memory Python held at once while `read` ran (beyond what it held before), and what
    `read` returned or raised."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            outcome: Any = read()
        except Rejected as refused:
            outcome = refused
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return peak, outcome


@pytest.fixture
def alice() -> Api:
    return Api("alice")


def files_of(alice: Api, project_id: int) -> list[str]:
    return [f["path"] for f in alice.call("GET", f"/api/projects/{project_id}/files/").json()["files"]]


@pytest.mark.parametrize(
    ("kind", "says"),
    [(b"L", "long name header"), (b"K", "long name header"), (b"x", "pax header"), (b"g", "pax header")],
)
def test_an_extension_header_declaring_megabytes_is_refused_before_it_is_read(
    alice: Api, kind: bytes, says: str
) -> None:
    bomb = header_bomb(kind, 96 * MB)  # about 95 KB of gzip
    assert len(bomb) < 200_000

    peak, refused = peak_while(lambda: read_archive(bomb))
    assert isinstance(refused, Rejected), refused
    assert peak < 2 * MB, f"reading a {len(bomb)} byte upload took {peak / MB:.0f} MB"

    project_id = alice.new_project()
    answer = alice.upload(project_id, bomb)
    assert answer.status_code == 413, answer.content
    body = answer.json()
    assert body["limit"] == "tar_header_bytes"
    assert body["error"] == f"the {says} at byte 0 of the archive declares 96.0 MB (at most 64.0 KB)"
    assert files_of(alice, project_id) == ["Dockerfile"]


def test_a_chain_of_extension_headers_is_refused() -> None:
    record = pax_record("comment", "x" * 100)
    one = tar_header(b"./PaxHeaders/x", len(record), b"x") + record + b"\0" * (-len(record) % 512)
    archive = one * 200 + member(b"a.txt", b"a") + END
    with pytest.raises(Rejected) as refused:
        read_archive(archive)
    assert refused.value.details["limit"] == "tar_header_bytes"
    said = "the pax header at byte 4096 of the archive follows too many others of its kind"
    assert refused.value.message == said


def test_the_same_member_twice_is_refused_naming_it_without_reading_the_rest(alice: Api) -> None:
    """150 members of 4 MB with one name unpacked 600 MB into one file before."""

    def parts() -> Iterator[bytes]:
        for _ in range(150):
            yield tar_header(b"same", 4 * MB)
            yield from filler(4 * MB, b"\0")
        yield END

    archive = gzipped(parts(), level=1)
    started = time.monotonic()
    peak, refused = peak_while(lambda: read_archive(archive))
    assert isinstance(refused, Rejected) and refused.details == {"file": "same"}
    assert refused.message == "same is in the archive twice: keep one of them"
    assert peak < 10 * MB  # the first copy, read once (and copied once)
    assert time.monotonic() - started < 1.0

    answer = alice.upload(alice.new_project(), archive)
    assert answer.status_code == 400 and answer.json()["file"] == "same"


def test_a_zip_member_with_no_name_is_refused_not_a_crash(alice: Api) -> None:
    """A damaged central directory can give a member a name of length 0, which zipfile's own
    is_dir() cannot look at (IndexError, a 500 before)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("Dockerfile"), b"FROM busybox\n")
        archive.writestr(zipfile.ZipInfo(""), b"x")
    answer = alice.client.post(
        f"/api/projects/{alice.new_project()}/context/", out.getvalue(), content_type="application/zip"
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "a member of the zip archive has no name: the archive is damaged"


def test_a_hundred_thousand_folder_entries_are_refused_at_the_limit(alice: Api) -> None:
    archive = gzipped([*(tar_header(b"d%d/" % i, 0, b"5", mode=0o755) for i in range(100_000)), END])
    peak, refused = peak_while(lambda: read_archive(archive))
    assert isinstance(refused, Rejected)
    assert refused.details["limit"] == "archive_folders" and refused.details["file"] == "d1000"
    assert peak < 2 * MB

    answer = alice.upload(alice.new_project(), archive)
    assert answer.status_code == 413 and answer.json()["limit"] == "archive_folders"


def test_a_tar_that_unpacks_past_the_limit_is_cut_off_as_it_unpacks(settings: Any) -> None:
    """Headers and folders hold no file, yet a gzip of them can unpack without end."""
    settings.PROJECT_MAX_BYTES = 1 * MB
    settings.PROJECT_MAX_FILES = 1000
    record = pax_record("comment", "c" * 60_000)
    pax = tar_header(b"./PaxHeaders/d", len(record), b"x") + record + b"\0" * (-len(record) % 512)
    archive = gzipped([*(pax + tar_header(b"d%d/" % i, 0, b"5") for i in range(900)), END])
    assert len(archive) < 500_000
    peak, refused = peak_while(lambda: read_archive(archive))
    assert isinstance(refused, Rejected) and refused.details["limit"] == "unpacked_bytes"
    assert "the archive unpacks to more than 9.8 MB" in refused.message
    assert peak < 2 * MB


def test_a_member_name_that_is_not_utf8_is_refused_naming_it(alice: Api) -> None:
    archive = member(b"caf\xe9.txt", b"coffee") + END
    answer = alice.upload(alice.new_project(), archive)
    assert answer.status_code == 400, answer.content
    assert answer.json() == {
        "error": "the name 'caf\\xe9.txt' is not UTF-8: rename it",
        "file": "caf\\xe9.txt",
    }


def test_a_tar_holding_a_file_and_a_folder_of_one_name_is_refused(alice: Api) -> None:
    project_id = alice.new_project()
    answer = alice.upload(project_id, tar_of({"same": b"a file", "same/inner": b"inside"}))
    assert answer.status_code == 409, answer.content
    assert answer.json() == {
        "error": "same cannot be both a file and a folder (holding same/inner): rename or remove one of them",
        "file": "same",
    }
    folder_entry = member(b"same", b"file") + tar_header(b"same/", 0, b"5") + END
    answer = alice.upload(project_id, folder_entry)
    assert answer.status_code == 409 and answer.json()["file"] == "same"
    assert files_of(alice, project_id) == ["Dockerfile"]


def test_a_zip_listing_a_hundred_thousand_folders_is_refused_before_zipfile_reads_it(alice: Api) -> None:
    archive = zip_of_folders(100_000)  # 8 MB
    peak, refused = peak_while(lambda: read_archive(archive))
    assert isinstance(refused, Rejected), refused
    assert refused.details["limit"] == "archive_entries" and refused.details["file"] == "d2000/"
    assert peak < 2 * MB

    answer = alice.upload(alice.new_project(), archive)
    assert answer.status_code == 413 and answer.json()["limit"] == "archive_entries"


def test_a_zip_bomb_is_refused_from_its_directory_before_a_byte_is_unpacked(alice: Api) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("zeros.bin", b"\0" * (4 * MB))
    bomb = out.getvalue()
    peak, refused = peak_while(lambda: read_archive(bomb))
    assert isinstance(refused, Rejected) and refused.details["limit"] == "zip_ratio"
    assert peak < 1 * MB
    answer = alice.upload(alice.new_project(), bomb)
    assert answer.status_code == 413
    assert answer.json()["file"] == "zeros.bin" and "looks like a zip bomb" in answer.json()["error"]
