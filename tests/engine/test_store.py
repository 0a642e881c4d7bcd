"""The content-addressed store on a real disk: layers committed from upper directories and
imported from tars, their tar streams, images and tags, the cache index, locks, and what
happens when several processes write the same thing at once."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from builds.engine import image as images
from builds.engine.builder import BuildOptions, build
from builds.engine.store import Image, Layer, LayerError, Store, canonical_json
from builds.engine.store.cacheindex import WriteBehind

from .conftest import busybox_tarball

BUSYBOX = busybox_tarball()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))


def write(path: Path, text: str, *, mtime: int = 1_700_000_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def base_layer(store: Store) -> Layer:
    """A lower layer: etc/passwd, etc/group, srv/keep, srv/old/x."""
    upper = store.work_dir("base")
    for name in ("etc/passwd", "etc/group", "srv/keep", "srv/old/x"):
        write(upper / name, f"{name}\n")
    layer = store.commit_layer(upper, [])
    assert layer is not None
    return layer


def tar_of(store: Store, layer_id: str) -> bytes:
    out = io.BytesIO()
    store.write_layer_tar(layer_id, out)
    return out.getvalue()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes | None]], *, compress: bool = False) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return io.BytesIO(gzip.compress(raw) if compress else raw)


def entry(name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "",
          mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, linkname, mode, 1_600_000_000
    return info


class TestCommitLayer:
    def test_an_empty_upper_gives_no_layer_and_goes_to_the_trash(self, store: Store) -> None:
        upper = store.work_dir("step")
        assert store.commit_layer(upper, []) is None
        assert not upper.exists()
        assert list(store.layers.iterdir()) == []

    def test_it_counts_added_modified_and_deleted_files_not_parent_directories(self, store: Store) -> None:
        base = base_layer(store)
        upper = store.work_dir("step")
        (upper / "etc").mkdir()
        shutil_copy_meta(store.layer_path(base.id) / "etc", upper / "etc")
        write(upper / "etc/passwd", "changed\n")
        whiteout(upper / "etc/group")
        write(upper / "new", "new\n")
        layer = store.commit_layer(upper, [base.id])
        assert layer is not None
        assert (layer.added, layer.modified, layer.deleted) == (1, 1, 1)
        assert {(c.path, c.change) for c in layer.changes} == {
            ("new", "added"), ("etc/passwd", "modified"), ("etc/group", "deleted")}
        assert layer.size == len("changed\n") + len("new\n")

    def test_a_directory_whose_mode_changed_is_modified(self, store: Store) -> None:
        base = base_layer(store)
        upper = store.work_dir("step")
        (upper / "srv").mkdir()
        os.chmod(upper / "srv", 0o700)
        layer = store.commit_layer(upper, [base.id])
        assert layer is not None
        assert [(c.path, c.kind, c.change) for c in layer.changes] == [("srv", "dir", "modified")]

    def test_a_directory_that_only_holds_nothing_new_is_no_change(self, store: Store) -> None:
        base = base_layer(store)
        upper = store.work_dir("step")
        (upper / "etc").mkdir()
        shutil_copy_meta(store.layer_path(base.id) / "etc", upper / "etc")
        os.utime(upper / "etc", (1, 1))  # a copied-up parent's mtime moves; that alone is no change
        assert store.commit_layer(upper, [base.id]) is None

    def test_an_opaque_directory_becomes_an_opq_marker_and_carries_both_xattrs(self, store: Store) -> None:
        base = base_layer(store)
        upper = store.work_dir("step")
        (upper / "srv").mkdir()
        # As the sandbox's overlay (mounted with userxattr) marks it:
        os.setxattr(upper / "srv", "user.overlay.opaque", b"y")
        write(upper / "srv/keep", "again\n")
        layer = store.commit_layer(upper, [base.id])
        assert layer is not None
        names = list(members(tar_of(store, layer.id)))
        assert names == ["srv", "srv/.wh..wh..opq", "srv/keep"]
        # Under an opaque directory a name the lower layer had is still a modification, and
        # what it hides without replacing is deleted.
        assert {(c.path, c.change) for c in layer.changes} == {
            ("srv", "modified"), ("srv/keep", "modified"), ("srv/old", "deleted")}
        stored = store.layer_path(layer.id) / "srv"
        assert os.getxattr(stored, "trusted.overlay.opaque") == b"y"
        assert os.getxattr(stored, "user.overlay.opaque") == b"y"

    def test_a_name_whited_out_in_a_middle_layer_is_added_again(self, store: Store) -> None:
        base = base_layer(store)
        middle = store.work_dir("step")
        (middle / "srv").mkdir()
        shutil_copy_meta(store.layer_path(base.id) / "srv", middle / "srv")
        whiteout(middle / "srv/old")
        removed = store.commit_layer(middle, [base.id])
        assert removed is not None and removed.deleted == 1
        upper = store.work_dir("step")
        write(upper / "srv/old/x", "back\n")
        shutil_copy_meta(store.layer_path(base.id) / "srv", upper / "srv")
        layer = store.commit_layer(upper, [base.id, removed.id])
        assert layer is not None
        assert {(c.path, c.change) for c in layer.changes} == {("srv/old", "added"), ("srv/old/x", "added")}

    def test_the_diff_id_is_stable_and_is_the_sha256_of_the_written_tar(self, store: Store) -> None:
        def make() -> Layer:
            upper = store.work_dir("step")
            write(upper / "b/two", "2")
            write(upper / "a", "1")
            os.symlink("/b/two", upper / "link")
            os.utime(upper / "b", (5, 5))
            # write() dates the files; the link too, or two calls a second apart differ.
            os.utime(upper / "link", (5, 5), follow_symlinks=False)
            layer = store.commit_layer(upper, [])
            assert layer is not None
            return layer

        first, second = make(), make()
        assert first.diff_id == second.diff_id
        data = tar_of(store, first.id)
        assert "sha256:" + hashlib.sha256(data).hexdigest() == first.diff_id
        assert len(data) == first.tar_size
        found = members(data)
        assert list(found) == ["a", "b", "b/two", "link"]  # sorted, parents first, no root entry
        assert found["link"].linkname == "/b/two" and found["a"].mtime == 1_700_000_000
        assert found["a"].uname == "" and found["a"].uid == 0

    def test_hard_links_in_a_layer_are_tar_hard_links(self, store: Store) -> None:
        upper = store.work_dir("step")
        write(upper / "a", "data")
        os.link(upper / "a", upper / "b")
        layer = store.commit_layer(upper, [])
        assert layer is not None and layer.size == 4
        found = members(tar_of(store, layer.id))
        assert found["a"].isreg() and found["b"].islnk() and found["b"].linkname == "a"

    def test_long_names_big_ids_and_xattrs_travel_in_pax_headers(self, store: Store) -> None:
        upper = store.work_dir("step")
        name = "d" * 90 + "/" + "f" * 90 + "é"
        path = write(upper / name, "x")
        os.chown(path, 3_000_000, 7)
        os.setxattr(path, "user.note", b"\x00\xffkept")
        layer = store.commit_layer(upper, [])
        assert layer is not None
        info = members(tar_of(store, layer.id))[name]
        assert (info.uid, info.gid) == (3_000_000, 7)
        value = info.pax_headers["SCHILY.xattr.user.note"]
        assert value.encode("utf-8", "surrogateescape") == b"\x00\xffkept"

    def test_the_same_layer_twice_is_stored_once(self, store: Store) -> None:
        layers = []
        for _ in range(2):
            upper = store.work_dir("step")
            write(upper / "same", "same")
            layers.append(store.commit_layer(upper, []))
            assert not upper.exists()
        assert layers[0] is not None and layers[1] is not None and layers[0].id == layers[1].id
        # A short file list is kept in the facts file: no file of its own.
        names = sorted(p.name for p in store.layers.iterdir())
        assert names == sorted([layers[0].id, f"{layers[0].id}.json"])
        assert store.layer(layers[0].id, changes=True).changes == layers[0].changes

    def test_a_facts_file_made_while_a_step_runs_becomes_the_next_layers(self, store: Store) -> None:
        store.layer_store.open_facts_file()
        made = store.layer_store._facts_file
        assert made is not None
        inode = os.fstat(made[1]).st_ino
        assert sorted(p.name for p in store.layers.iterdir()) == []  # unnamed until the commit

        upper = store.work_dir("step")
        write(upper / "app", "one")
        layer = store.commit_layer(upper, [])

        assert layer is not None and (store.layers / f"{layer.id}.json").stat().st_ino == inode
        assert store.layer(layer.id, changes=True).changes == layer.changes
        again = store.work_dir("step")
        write(again / "app", "two")
        second = store.commit_layer(again, [])  # none made ahead: written through tmp/
        assert second is not None and store.layer(second.id).diff_id == second.diff_id

    def test_a_facts_file_made_before_a_fork_stays_the_parents(self, store: Store) -> None:
        store.layer_store.open_facts_file()
        made = store.layer_store._facts_file
        assert made is not None
        inode = os.fstat(made[1]).st_ino
        child = multiprocessing.get_context("fork").Process(target=_commit_one, args=(store, "child"))
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0

        upper = store.work_dir("step")
        write(upper / "app", "parent")
        layer = store.commit_layer(upper, [])
        assert layer is not None and (store.layers / f"{layer.id}.json").stat().st_ino == inode
        facts = sorted(p for p in store.layers.iterdir() if p.suffix == ".json")
        assert len(facts) == 2 and all(json.loads(p.read_bytes())["diff_id"] for p in facts)

    def test_a_long_file_list_has_a_file_of_its_own_and_one_written_so_before_still_reads(
        self, store: Store
    ) -> None:
        upper = store.work_dir("step")
        for i in range(65):
            write(upper / f"f{i:02}", "x")
        layer = store.commit_layer(upper, [])
        assert layer is not None
        facts = store.layers / f"{layer.id}.json"
        assert "changes" not in json.loads(facts.read_bytes())
        assert len(store.layer(layer.id, changes=True).changes) == 65

        upper = store.work_dir("step")
        write(upper / "small", "s")
        small = store.commit_layer(upper, [])
        assert small is not None
        # As every layer was written before short lists went into the facts file.
        data = json.loads((store.layers / f"{small.id}.json").read_bytes())
        rows = data.pop("changes")
        (store.layers / f"{small.id}.json").write_text(json.dumps(data))
        (store.layers / f"{small.id}.changes.json").write_text(json.dumps(rows))
        assert store.layer(small.id, changes=True).changes == small.changes
        assert store.layer(small.id).size == small.size

    def test_concurrent_commits_of_the_same_content_leave_one_good_layer(self, store: Store) -> None:
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(4)
        results = ctx.Queue()
        procs = [ctx.Process(target=_commit_same, args=(str(store.root), barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        ids = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert len(set(ids)) == 1
        layer_id = ids[0]
        assert (store.layer_path(layer_id) / "big").stat().st_size == 8 << 20
        assert store.layer(layer_id).added == 202  # big, files/ and its 200 files
        assert len(list(store.trash.iterdir())) == 3  # the losers, kept for later deletion
        assert [p for p in store.tmp.iterdir() if p.name != "trash"] == []
        assert store.write_layer_tar(layer_id, io.BytesIO()) == store.layer(layer_id).diff_id

    def test_a_layer_commits_quickly(self, store: Store) -> None:
        upper = store.work_dir("step")
        for i in range(5000):
            write(upper / f"pkg{i % 50}/file{i}", "x" * (i % 2000))
        started = time.perf_counter()
        layer = store.commit_layer(upper, [])
        took = time.perf_counter() - started
        assert layer is not None and layer.added == 5050
        assert took < 2.0, f"committing 5,000 files took {took:.2f}s"


def shutil_copy_meta(src: Path, dst: Path) -> None:
    """What overlayfs's copy-up does to a parent directory."""
    st = os.lstat(src)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _commit_same(root: str, barrier: Any, results: Any) -> None:
    store = Store(root)
    upper = store.work_dir("step")
    write(upper / "big", "")
    with open(upper / "big", "wb") as f:
        f.write(b"z" * (8 << 20))
    os.utime(upper / "big", (1, 1))
    for i in range(200):
        write(upper / f"files/{i}", str(i))
    os.utime(upper / "files", (1, 1))
    barrier.wait()
    layer = store.commit_layer(upper, [])
    assert layer is not None
    results.put(layer.id)


class TestImportLayer:
    def test_oci_whiteouts_become_overlay_whiteouts(self, store: Store) -> None:
        tar = tar_bytes([(entry("etc", tarfile.DIRTYPE, mode=0o755), None), (entry("etc/.wh.group"), b""),
                         (entry("var/.wh..wh..opq"), b""), (entry("var/new"), b"n")])
        layer = store.import_layer(tar)
        root = store.layer_path(layer.id)
        st = os.lstat(root / "etc/group")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(root / "var", "trusted.overlay.opaque") == b"y"
        assert not (root / "etc/.wh.group").exists()
        assert layer.deleted == 1
        assert list(members(tar_of(store, layer.id))) == [
            "etc", "etc/.wh.group", "var", "var/.wh..wh..opq", "var/new"]

    def test_owners_modes_devices_links_and_times_are_kept(self, store: Store) -> None:
        exe = entry("bin/tool", mode=0o4755)
        exe.uid, exe.gid = 1234, 99
        dev = entry("dev/null", tarfile.CHRTYPE, mode=0o666)
        dev.devmajor, dev.devminor = 1, 3
        layer = store.import_layer(tar_bytes([
            (exe, b"#!/bin/sh\n"), (entry("bin/again", tarfile.LNKTYPE, linkname="bin/tool"), None),
            (dev, None), (entry("run/fifo", tarfile.FIFOTYPE), None),
            (entry("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"), None)]))
        root = store.layer_path(layer.id)
        st = os.lstat(root / "bin/tool")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 99, 0o4755)
        assert st.st_mtime == 1_600_000_000
        assert st.st_nlink == 2 and os.lstat(root / "bin/again").st_ino == st.st_ino
        assert os.lstat(root / "dev/null").st_rdev == os.makedev(1, 3)
        assert stat.S_ISFIFO(os.lstat(root / "run/fifo").st_mode)
        assert os.readlink(root / "bin/sh") == "/bin/busybox"

    def test_gzip_layers_are_read(self, store: Store) -> None:
        layer = store.import_layer(tar_bytes([(entry("hello"), b"hi")], compress=True))
        assert (store.layer_path(layer.id) / "hello").read_text() == "hi"

    def test_a_zstd_compressed_layer_is_read_as_registries_may_serve_it(self, store: Store) -> None:
        import zstandard

        raw = tar_bytes([(entry("hello"), b"hi")]).getvalue()
        layer = store.import_layer(io.BytesIO(zstandard.ZstdCompressor().compress(raw)))
        assert (store.layer_path(layer.id) / "hello").read_text() == "hi"

    @pytest.mark.parametrize(("entries", "message"), [
        ([(entry("../evil"), b"x")], "outside the layer"),
        ([(entry("a/../../evil"), b"x")], "outside the layer"),
        ([(entry("link", tarfile.SYMTYPE, linkname="{outside}"), None), (entry("link/evil"), b"x")],
         "symlink"),
        ([(entry("hard", tarfile.LNKTYPE, linkname="../evil"), None)], "outside the layer"),
        ([(entry("hard", tarfile.LNKTYPE, linkname="{outside}/target"), None)], "not in the layer"),
        ([(entry("dir", tarfile.SYMTYPE, linkname="/"), None), (entry("dir/.wh.target"), b"")], "symlink"),
    ])
    def test_entries_that_escape_are_refused_and_nothing_is_written_outside(
        self, store: Store, tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]], message: str
    ) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        write(outside / "target", "precious")
        for info, _ in entries:
            info.linkname = info.linkname.format(outside=outside)
        with pytest.raises(LayerError, match=message):
            store.import_layer(tar_bytes(entries))
        assert sorted(p.name for p in outside.iterdir()) == ["target"]
        assert (outside / "target").read_text() == "precious"
        assert not (tmp_path / "evil").exists() and not (store.root / "evil").exists()
        assert [p for p in store.tmp.iterdir() if p.name != "trash"] == []
        assert list(store.layers.iterdir()) == []

    def test_an_absolute_entry_name_lands_inside_the_layer(self, store: Store) -> None:
        layer = store.import_layer(tar_bytes([(entry("/etc/motd"), b"hi")]))
        assert (store.layer_path(layer.id) / "etc/motd").read_text() == "hi"

    def test_a_layer_round_trips_through_its_tar(self, store: Store) -> None:
        with open(BUSYBOX, "rb") as f:
            layer = store.import_layer(f)
        data = tar_of(store, layer.id)
        again = Store(store.root.parent / "other").import_layer(io.BytesIO(data))
        assert again.diff_id == layer.diff_id
        assert (store.layer_path(layer.id) / "bin/busybox").stat().st_size > 100_000

    def test_garbage_is_a_clear_error(self, store: Store) -> None:
        with pytest.raises(LayerError, match="not a readable layer tar"):
            store.import_layer(io.BytesIO(b"this is not a tar at all" * 40))


class TestImagesAndTags:
    def image(self, store: Store, cmd: str = "sh") -> Image:
        return Image(config={"architecture": "amd64", "os": "linux", "config": {"Cmd": [cmd]},
                             "rootfs": {"type": "layers", "diff_ids": []}}, layers=[])

    def test_an_image_is_named_by_the_sha256_of_its_canonical_config(self, store: Store) -> None:
        image = self.image(store)
        digest = store.put_image(image)
        assert digest == image.digest == "sha256:" + hashlib.sha256(canonical_json(image.config)).hexdigest()
        assert store.blob_path(digest).read_bytes() == canonical_json(image.config)
        found = store.get_image(digest)
        assert found is not None and found.config == image.config

    @pytest.mark.parametrize("ref", [
        "busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest"])
    def test_docker_hub_prefixes_and_the_latest_tag_are_implied(self, store: Store, ref: str) -> None:
        digest = store.put_image(self.image(store))
        store.tag("docker.io/library/busybox", digest)
        assert store.tags() == {"busybox:latest": digest}
        found = store.get_image(ref)
        assert found is not None and found.digest == digest

    def test_a_registry_port_is_not_a_tag(self, store: Store) -> None:
        digest = store.put_image(self.image(store))
        store.tag("localhost:5000/team/app", digest)
        assert store.tags() == {"localhost:5000/team/app:latest": digest}

    def test_unknown_images_are_none(self, store: Store) -> None:
        assert store.get_image("nothing:here") is None
        assert store.get_image("sha256:" + "0" * 64) is None

    def test_concurrent_tagging_keeps_every_tag(self, store: Store) -> None:
        digest = store.put_image(self.image(store))
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_tag_many, args=(str(store.root), digest, n)) for n in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert len(store.tags()) == 4 * 25


def _tag_many(root: str, digest: str, n: int) -> None:
    store = Store(root)
    for i in range(25):
        store.tag(f"app{n}:v{i}", digest)


class TestCacheIndex:
    KEY = "sha256:" + "ab" * 32
    PARENT = "sha256:" + "cd" * 32

    def test_a_missing_key_is_none(self, store: Store) -> None:
        assert store.cache_get(self.KEY) is None

    def test_a_record_comes_back_by_its_key(self, store: Store) -> None:
        store.cache_put(self.KEY, {"layer": "x", "inputs": {"cmd": "true"}}, parent=self.PARENT)
        assert store.cache_get(self.KEY) == {"layer": "x", "inputs": {"cmd": "true"}}
        assert (store.cache / "ab" / f"{'ab' * 32}.json").is_file()

    def test_children_come_back_oldest_first(self, store: Store) -> None:
        for i in range(3):
            store.cache_put(f"sha256:{i:064x}", {"n": i}, parent=self.PARENT)
        assert [r["n"] for r in store.cache_children(self.PARENT)] == [0, 1, 2]
        assert store.cache_children("sha256:" + "ee" * 32) == []

    def test_odd_keys_cannot_name_files_outside_the_index(self, store: Store) -> None:
        store.cache_put("../../escape", {"n": 1}, parent="../../parent")
        assert store.cache_get("../../escape") == {"n": 1}
        assert store.cache_children("../../parent") == [{"n": 1}]
        assert sorted(p.name for p in store.root.iterdir()) == sorted(
            ["blobs", "cache", "children", "f", "images", "l", "locks", "tmp"])

    def test_concurrent_appends_never_interleave(self, store: Store) -> None:
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_put_many, args=(str(store.root), self.PARENT, n)) for n in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        lines = (store.children / f"{'cd' * 32}.jsonl").read_bytes().splitlines()
        assert len(lines) == 4 * 50
        records = [json.loads(line) for line in lines]
        for n in range(4):
            assert [r["i"] for r in records if r["n"] == n] == list(range(50))  # each writer's order kept

    def test_a_lookup_is_well_under_a_millisecond(self, store: Store) -> None:
        store.cache_put(self.KEY, {"layer": "x", "inputs": {"cmd": "true"}}, parent=self.PARENT)
        started = time.perf_counter()
        for _ in range(1000):
            store.cache_get(self.KEY)
            Store(store.root)
        assert (time.perf_counter() - started) / 1000 < 0.0005


class TestRecordsWrittenBehind:
    """A build's records are written by a thread of its own while its next step runs."""

    KEY = "sha256:" + "ab" * 32
    PARENT = "sha256:" + "cd" * 32

    def test_a_record_is_seen_at_once_and_reaches_the_disk_once_written(self, store: Store) -> None:
        scope = WriteBehind(store.cache_index.scope(""))
        scope.record(self.KEY, {"key": self.KEY, "n": 1, "created": 1.0}, parent=self.PARENT)
        assert scope.lookup(self.KEY) == {"key": self.KEY, "n": 1, "created": 1.0}
        assert [r["n"] for r in scope.children(self.PARENT)] == [1]
        assert store.cache_get(self.KEY) is None  # nothing written before the step runs

        scope.start_writing()
        scope.flush()
        assert store.cache_get(self.KEY) == {"key": self.KEY, "n": 1, "created": 1.0}
        assert [r["n"] for r in store.cache_children(self.PARENT)] == [1]
        assert [r["n"] for r in scope.children(self.PARENT)] == [1]  # once, not twice

    def test_children_while_written_come_back_each_once_oldest_first(self, store: Store) -> None:
        store.cache_put("sha256:" + "00" * 32, {"key": "old", "n": 0, "created": 0.0}, parent=self.PARENT)
        scope = WriteBehind(store.cache_index.scope(""))
        for i in range(1, 40):
            record = {"key": f"k{i}", "n": i, "created": float(i)}
            scope.record(f"sha256:{i:064x}", record, parent=self.PARENT)
        scope.start_writing()
        seen = [[r["n"] for r in scope.children(self.PARENT)]]
        while store.cache_get(f"sha256:{39:064x}") is None:  # read while the thread writes
            seen.append([r["n"] for r in scope.children(self.PARENT)])
        scope.flush()
        seen.append([r["n"] for r in scope.children(self.PARENT)])
        assert all(ns == list(range(40)) for ns in seen), seen

    def test_a_write_that_fails_is_raised_by_flush_and_by_the_next_record(self, store: Store) -> None:
        (store.root / "children").rmdir()
        (store.root / "children").write_text("not a directory")
        scope = WriteBehind(store.cache_index.scope(""))
        scope.record(self.KEY, {"n": 1}, parent=self.PARENT)
        scope.start_writing()
        with pytest.raises(OSError):
            scope.flush()
        with pytest.raises(OSError):
            scope.record("sha256:" + "ef" * 32, {"n": 2}, parent=self.PARENT)

    def test_a_failed_build_keeps_the_records_of_the_steps_before_the_failure(
            self, store: Store, tmp_path: Path) -> None:
        images.import_any(store, BUSYBOX, "studio/busybox:1.35")
        (tmp_path / "Dockerfile").write_text(
            "FROM studio/busybox:1.35\nRUN echo one > /one\nRUN echo two > /two\nRUN exit 3\n")
        options = BuildOptions(context=tmp_path, dockerfile=tmp_path / "Dockerfile")
        assert build(store, options).status == "failed"
        events: list[dict[str, Any]] = []
        again = build(store, options, events.append)
        assert again.status == "failed"
        finished = [e["status"] for e in events if e["type"] == "step.finished"]
        assert finished == ["cached", "cached", "cached", "failed"]


def _commit_one(store: Store, text: str) -> None:
    # Forked: the same Store object, holding the parent's facts file made ahead.
    upper = store.work_dir("step")
    write(upper / "app", text)
    assert store.commit_layer(upper, []) is not None


def _put_many(root: str, parent: str, n: int) -> None:
    store = Store(root)
    padding = "p" * 5000  # long lines: a torn append would show
    for i in range(50):
        store.cache_put(f"sha256:{n:032x}{i:032x}", {"n": n, "i": i, "pad": padding}, parent=parent)


class TestLocks:
    def test_a_lock_excludes_other_processes(self, store: Store) -> None:
        counter = store.root / "counter"
        counter.write_text("0")
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_count, args=(str(store.root), counter)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert counter.read_text() == str(3 * 100)


def _count(root: str, counter: Path) -> None:
    store = Store(root)
    for _ in range(100):
        with store.lock("counter"):
            value = int(counter.read_text())
            counter.write_text(str(value + 1))


class TestTrash:
    def test_discarded_trees_wait_in_the_trash_until_emptied(self, store: Store) -> None:
        upper = store.work_dir("step")
        write(upper / "a/b", "x")
        store.discard(upper)
        assert len(list(store.trash.iterdir())) == 1
        assert store.empty_trash() == 1
        assert list(store.trash.iterdir()) == []

    def test_emptying_stops_when_asked_and_the_rest_waits_for_next_time(self, store: Store) -> None:
        for _ in range(3):
            upper = store.work_dir("step")
            for i in range(40):
                write(upper / f"d{i % 4}/f{i}", "x")
            os.symlink("d0", upper / "link")
            store.discard(upper)
        asked = []

        def stop() -> bool:
            asked.append(1)
            return len(asked) == 2

        assert store.empty_trash(stop=stop, check_every=10) < 3
        assert list(store.trash.iterdir()) != []
        assert store.empty_trash() >= 1
        assert list(store.trash.iterdir()) == []


# A process that starts a step in the store and waits: its upper directory, a half-written
# temp file, and the overlay work directory the sandbox makes beside the upper.
_WORKING = """
import sys, time
from builds.engine.store import Store
store = Store(sys.argv[1])
upper = store.work_dir("step")
(upper / "half-written").write_bytes(b"x" * 4096)
(upper.parent / f".sandbox-work-{upper.name}-abc").mkdir()
store._temp_path("config.json").write_bytes(b"{")
print(upper.name, flush=True)
time.sleep(60)
"""
PROJECT = Path(__file__).resolve().parents[2]


class TestLeftovers:
    def _working(self, store: Store) -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen([sys.executable, "-c", _WORKING, str(store.root)], cwd=PROJECT,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        return process, process.stdout.readline().strip()

    def test_what_a_killed_process_left_in_tmp_goes_to_the_trash(self, store: Store) -> None:
        process, upper = self._working(store)
        process.send_signal(signal.SIGKILL)
        process.wait()
        left = sorted(p.name for p in store.tmp.iterdir() if p.name != "trash")
        assert len(left) == 3 and upper in left
        assert store.reclaim() == 3
        assert [p.name for p in store.tmp.iterdir()] == ["trash"]
        assert not [p for p in store.locks.iterdir() if p.name.startswith("holder-")]
        assert store.empty_trash() == 3
        assert list(store.trash.iterdir()) == []

    def test_a_live_process_keeps_what_it_is_working_on(self, store: Store) -> None:
        process, upper = self._working(store)
        try:
            mine = store.work_dir("step")
            (store.tmp / "not-the-store's").mkdir()  # no token: nobody's to take
            assert store.reclaim() == 0
            assert {upper, mine.name, "not-the-store's"} <= {p.name for p in store.tmp.iterdir()}
        finally:
            process.kill()
            process.wait()
        assert store.reclaim() == 3
        assert mine.is_dir() and (store.tmp / "not-the-store's").is_dir()

    def test_tidying_waits_while_another_process_is_at_work_in_the_store(self, store: Store) -> None:
        (store.trash / "from-an-earlier-build").mkdir()
        process, upper = self._working(store)
        try:
            self._tidy(store)
            assert (store.trash / "from-an-earlier-build").is_dir()
            assert (store.tmp / upper).is_dir()
        finally:
            process.kill()
            process.wait()
        self._tidy(store)
        assert [p.name for p in store.tmp.iterdir()] == ["trash"]
        assert list(store.trash.iterdir()) == []

    def test_a_process_done_with_the_store_lets_tidying_start(self, store: Store) -> None:
        store.discard(store.work_dir("step"))
        self._tidy(store)
        assert len(list(store.trash.iterdir())) == 1  # this process is still at work
        store.release()
        self._tidy(store)
        assert list(store.trash.iterdir()) == []
        assert not [p for p in store.locks.iterdir() if p.name.startswith("holder-")]

    @staticmethod
    def _tidy(store: Store) -> None:
        subprocess.run([sys.executable, "-m", "builds.engine.tidy", str(store.root)], cwd=PROJECT,
                       check=True, timeout=60)


def _flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return int.from_bytes(fcntl.ioctl(fd, 0x80086601, bytes(8))[:4], "little")
    finally:
        os.close(fd)


def test_the_directories_made_in_tmp_are_spread_over_the_disk_where_ext4_can(tmp_path: Path) -> None:
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout
    if not kind.startswith("ext"):  # ext4 shows as "ext2/ext3"
        pytest.skip(f"the flag is ext4's; {tmp_path} is on {kind.strip()}")
    store = Store(tmp_path / "store")
    store.work_dir("step")
    assert not _flags(tmp_path) & 0x00020000
    assert _flags(store.tmp) & 0x00020000  # chattr +T: Orlov's spreading, as at the root


def test_a_store_where_no_directory_can_be_spread_works_the_same() -> None:
    root = Path(tempfile.mkdtemp(dir="/dev/shm"))  # tmpfs: no inode flags at all
    try:
        store = Store(root / "store")
        upper = store.work_dir("step")
        write(upper / "f", "x")
        assert store.commit_layer(upper, []) is not None
    finally:
        shutil.rmtree(root)
