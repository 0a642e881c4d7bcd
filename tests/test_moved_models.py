"""Projects and classrooms moved out of the `studio` app into apps of their own: a database made
before the move migrates forward with every row and every foreign key intact, on SQLite (the
default) and on PostgreSQL (compose.yaml's). tests/migrate_moved_models.py does the migrating, in
its own process, so that it can start from an empty database of its own."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.runner import free_port, wait_for_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "migrate_moved_models.py"


def _postgres_bin() -> Path | None:
    # Debian's postgresql package keeps its server programs out of PATH.
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_nobody() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: as root, its programs run as `nobody`."""
    if os.getuid() != 0:
        return {}
    return {"user": "nobody", "group": "nogroup", "extra_groups": []}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: `make debian-packages` installs it")
    # Not under pytest's tmp_path: `nobody` may not pass through root's private folders.
    with tempfile.TemporaryDirectory(prefix="studio-pg-") as folder:
        data = Path(folder)
        if os.getuid() == 0:
            shutil.chown(data, "nobody", "nogroup")
        yield from _serve_postgres(bin_dir, data)


def _serve_postgres(bin_dir: Path, data: Path) -> Iterator[str]:
    drop = _as_nobody()
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "-U", "studio", "--auth=trust", "--no-sync"],
        check=True, capture_output=True, cwd=data, **drop,
    )
    port = free_port()
    server = subprocess.Popen(
        [bin_dir / "postgres", "-D", data, "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", f"unix_socket_directories={data}", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=data, **drop,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout_s=30)
        yield f"postgres://studio@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _migrate_forward(database_url: str) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, SCRIPT], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _check(result: dict[str, Any]) -> None:
    before, after = result["before"], result["after"]
    # Every row of every table the move touched, column for column, as it was; but builds_step,
    # which a later builds migration reshapes (a step kept as its event, checked by
    # tests/builds/test_step_events_migration.py): its rows are checked through the models below.
    # Columns later migrations add (studio_exercise.lesson) come after the ones the move kept,
    # which hold what they held.
    for table in before:
        if table not in ("django_content_type", "builds_step"):
            width = len(before[table][0]) if before[table] else 0
            assert [row[:width] for row in after[table]] == before[table], table
    assert len(after["studio_project"]) == 2 and len(after["builds_step"]) == 2
    # The content types followed their models, under the same ids, so permissions still hold.
    assert after["django_content_type"] == [[1, "projects", "project"], [2, "classrooms", "classroom"]]
    assert {"projects.0001_initial", "classrooms.0001_initial", "studio.0006_models_in_their_apps"} <= set(
        result["applied"]
    )

    models = result["models"]
    assert models["room"] == ["teacher", "lesson", True]
    assert models["assignment"] == [
        "lesson (copy)", "student", "Ana", "student", "Layers 101", "Cache me", "cccc", "Layers 101",
        [{"status": "pass"}],
    ]
    assert models["files"] == [["Dockerfile", 16, "0o644"], ["bin/run.sh", 5, "0o755"]]
    assert models["revision_files"] == [
        ["lesson", "Dockerfile", b"FROM busybox\nRUN\n".hex()],
        ["lesson", "bin/run.sh", "00ff6869"],
    ]
    assert [b[:3] + b[4:] for b in models["builds"]] == [
        ["lesson", "cccc", "teacher", 1], ["lesson (copy)", "dddd", "teacher", 1]
    ]
    assert models["builds"][1][3].startswith("class:")
    assert models["steps"] == [["lesson", "FROM busybox"], ["lesson (copy)", "FROM busybox"]]
    assert models["permissions"] == [
        ["view_classroom", "classrooms", "classroom"], ["view_project", "projects", "project"]
    ]
    assert models["reverse"] == [1, 1, 1, 1, 1]
    assert result["broken_foreign_keys"] == []


def test_sqlite_database_from_before_the_move_keeps_every_row(tmp_path: Path) -> None:
    _check(_migrate_forward(f"sqlite:///{tmp_path / 'studio.sqlite3'}"))


def test_postgres_database_from_before_the_move_keeps_every_row(postgres_url: str) -> None:
    _check(_migrate_forward(postgres_url))
