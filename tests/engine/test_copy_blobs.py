"""COPY puts context files into layers as hard links to the store's immutable file blobs: the
layer reads exactly as a copy would, nothing a later step does reaches a blob, and a rebuild
writes only the files that changed."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from builds.engine import image as images
from builds.engine import parallel
from builds.engine.store import FileMeta, SourceChanged, Store

from .conftest import BASE, Built, Project, busybox_tarball


def layer_of(built: Built, instruction: str) -> str:
    return built.step(instruction)["layer"]["digest"][7:23]


def layer_tar(store: Store, layer_id: str) -> tarfile.TarFile:
    out = io.BytesIO()
    store.write_layer_tar(layer_id, out)
    out.seek(0)
    return tarfile.open(fileobj=out)


def tar_entries(store: Store, layer_id: str) -> list[tuple[object, ...]]:
    """A layer tar's entries as a user would compare them: names, types, modes, owners, file
    contents and file mtimes. A directory COPY creates (here /app) is stamped with the build's
    time, so its mtime says when the layer was made, not what it holds."""
    with layer_tar(store, layer_id) as tar:
        return [
            (m.name, m.type, m.mode, m.uid, m.gid, m.linkname, None if m.isdir() else m.mtime,
             hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        ]


def blobs(store: Store) -> list[Path]:
    return sorted(path for path in store.files.root.rglob("*") if path.is_file())


class TestLinkedLayers:
    def test_copied_files_are_the_stores_blobs(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY . /app\n", "a.txt": "alpha\n", "b/c": "gamma\n"})
        built = proj.build()
        layer = proj.store.layer_path(layer_of(built, "COPY"))
        copied = os.stat(layer / "app" / "a.txt")
        blob = proj.store.files.path(hashlib.sha256(b"alpha\n").hexdigest(),
                                     FileMeta(0o644, 0, 0, os.stat(proj.root / "a.txt").st_mtime_ns))
        assert os.stat(blob).st_ino == copied.st_ino
        assert copied.st_nlink == 2
        # The context's own file is left alone: a CLI context is the user's, and is copied once.
        assert os.stat(proj.root / "a.txt").st_nlink == 1

    def test_identical_files_read_as_separate_files_in_the_layer_tar(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY . /app\n"})
        for name in ("one", "two", "three"):
            (proj.root / name).write_text("same bytes\n")
            os.utime(proj.root / name, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
        built = proj.build()
        members = {m.name: m for m in layer_tar(proj.store, layer_of(built, "COPY")).getmembers()}
        for name in ("one", "two", "three"):
            member = members[f"app/{name}"]
            assert member.isreg() and member.size == len("same bytes\n")
            assert (member.mode, member.uid, member.gid, member.mtime) == (0o644, 0, 0, 1_700_000_000)
        same = hashlib.sha256(b"same bytes\n").hexdigest()
        assert len([blob for blob in blobs(proj.store) if blob.name.startswith(same)]) == 1

    def test_many_files_placed_by_several_threads_read_exactly_as_one_thread_places_them(
        self, project: Callable[..., Project], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Enough files for the threads, in several directories, a tenth of them with the same
        # bytes (one blob, linked once, the rest copied from it) and some empty.
        files = {f"d{i % 9}/f{i}.txt": "same\n" if i % 10 == 0 else f"{i}\n" * (i % 4) for i in range(400)}
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY . /app\n", **files})
        for name in files:
            os.utime(proj.root / name, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
        monkeypatch.setattr(parallel, "THREADS", 2)
        threaded = proj.build()
        monkeypatch.setattr(parallel, "THREADS", 1)
        other = Store(tmp_path / "other")
        images.import_any(other, busybox_tarball(), BASE)
        alone = Project(proj.root, other).build()
        entries = tar_entries(proj.store, layer_of(threaded, "COPY"))
        assert entries == tar_entries(other, layer_of(alone, "COPY"))
        assert len([e for e in entries if e[1] == tarfile.REGTYPE]) == 401  # the Dockerfile too
        same = hashlib.sha256(b"same\n").hexdigest()
        assert len([blob for blob in blobs(proj.store) if blob.name.startswith(same)]) == 1

    def test_chmod_and_chown_make_their_own_blobs(self, project: Callable[..., Project]) -> None:
        proj = project({
            "Dockerfile": f"FROM {BASE}\nCOPY run.sh /a/\nCOPY --chmod=755 --chown=1000:1000 run.sh /b/\n",
            "run.sh": "echo hi\n",
        })
        built = proj.build()
        plain = os.stat(proj.store.layer_path(layer_of(built, "COPY run.sh")) / "a" / "run.sh")
        changed = os.stat(proj.store.layer_path(layer_of(built, "COPY --chmod")) / "b" / "run.sh")
        assert (plain.st_mode & 0o7777, plain.st_uid) == (0o644, 0)
        assert (changed.st_mode & 0o7777, changed.st_uid, changed.st_gid) == (0o755, 1000, 1000)
        assert plain.st_ino != changed.st_ino
        assert len(blobs(proj.store)) == 2

    def test_a_later_run_that_changes_a_copied_file_leaves_the_blob_alone(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({
            "Dockerfile": f"FROM {BASE}\nCOPY data.txt /data.txt\n"
                          "RUN echo more >> /data.txt && chmod 600 /data.txt && chown 7:7 /data.txt"
                          " && touch -d 2001-01-01 /data.txt && cat /data.txt > /seen\n",
            "data.txt": "original\n",
        })
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        [blob] = blobs(proj.store)
        before = os.stat(proj.root / "data.txt")
        assert blob.read_text() == "original\n"
        st = os.stat(blob)
        assert (st.st_mode & 0o7777, st.st_uid, st.st_mtime_ns) == (0o644, 0, before.st_mtime_ns)
        run_layer = proj.store.layer_path(layer_of(built, "RUN"))
        assert (run_layer / "data.txt").read_text() == "original\nmore\n"
        assert (run_layer / "seen").read_text() == "original\nmore\n"

    def test_a_rebuild_after_one_edit_writes_only_that_file(self, project: Callable[..., Project]) -> None:
        files = {f"src/m{i}.py": f"print({i})\n" for i in range(20)}
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY . /app\n", **files})
        first = proj.build()
        proj.write({"src/m7.py": "print('seven')\n"})
        second = proj.build()
        assert second.step("COPY")["status"] == "built"
        old = proj.store.layer_path(layer_of(first, "COPY")) / "app/src"
        new = proj.store.layer_path(layer_of(second, "COPY")) / "app/src"
        def inode(path: Path) -> int:
            return os.stat(path).st_ino

        shared = [i for i in range(20) if inode(old / f"m{i}.py") == inode(new / f"m{i}.py")]
        assert shared == [i for i in range(20) if i != 7]
        assert (new / "m7.py").read_text() == "print('seven')\n"

    def test_an_owned_context_gives_its_files_to_the_store_and_the_same_layer(
        self, project: Callable[..., Project], tmp_path: Path
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY . /app\n", "a.txt": "alpha\n", "run.sh": "echo\n"})
        os.chmod(proj.root / "run.sh", 0o755)
        copied = proj.build()
        other = Store(tmp_path / "other")
        images.import_any(other, busybox_tarball(), BASE)
        owned = Project(proj.root, other).build(context_owned=True)
        want = tar_entries(proj.store, layer_of(copied, "COPY"))
        assert tar_entries(other, layer_of(owned, "COPY")) == want
        layer = other.layer_path(layer_of(owned, "COPY"))
        assert os.stat(layer / "app" / "a.txt").st_ino == os.stat(proj.root / "a.txt").st_ino


class TestFileBlobs:
    def test_a_file_changed_after_it_was_hashed_is_refused(self, store: Store, tmp_path: Path) -> None:
        source = tmp_path / "f.txt"
        source.write_text("one\n")
        hashed = os.stat(source)
        digest = hashlib.sha256(b"one\n").hexdigest()
        source.write_text("two, longer\n")
        meta = FileMeta(0o644, 0, 0, hashed.st_mtime_ns)
        blob = store.files.path(digest, meta)
        with pytest.raises(SourceChanged, match=r'"f\.txt" changed while the build was reading it'):
            store.files.place(str(tmp_path / "dest"), blob, meta, str(source), hashed, name="f.txt")
        assert not os.path.exists(blob)

    def test_a_placed_file_becomes_the_blob_with_the_metadata_asked_for(
        self, store: Store, tmp_path: Path
    ) -> None:
        source = tmp_path / "f.txt"
        source.write_text("one\n")
        os.chmod(source, 0o600)
        digest = hashlib.sha256(b"one\n").hexdigest()
        meta = FileMeta(0o4755, 12, 34, 1_600_000_000_123_456_789)
        blob = store.files.path(digest, meta)
        store.files.place(str(tmp_path / "dest"), blob, meta, str(source), os.stat(source), name="f.txt")
        st = os.stat(blob)
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns) == (
            0o4755, 12, 34, 1_600_000_000_123_456_789)
        assert st.st_ino == os.stat(tmp_path / "dest").st_ino
        assert os.stat(source).st_mode & 0o7777 == 0o600  # the source is not the store's to change
        store.files.place(str(tmp_path / "dest2"), blob, meta, str(source), os.stat(source), name="f")
        assert os.stat(tmp_path / "dest2").st_ino == st.st_ino
