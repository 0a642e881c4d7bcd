"""`manage.py build --dry-run`: what a build would do, printed without building anything."""
# ruff: noqa: F811 (the data fixture is imported, then named as an argument)

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_cli import data, manage  # noqa: F401 (data: the store with the base image, a fixture)

DOCKERFILE = "FROM studio/busybox:1.35\nCOPY app.txt /app.txt\nENV MODE=x\nRUN cat /app.txt\n"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "app.txt").write_text("one\n")
    return ctx


def test_a_dry_run_says_what_would_be_rebuilt_and_builds_nothing(data: Path, context: Path) -> None:
    before = sorted(p.name for p in (data / "cache").rglob("*"))
    dry = manage("build", str(context), "--dry-run", data=data)
    assert dry.returncode == 0, dry.stderr
    assert "#2 WOULD REBUILD: Built for the first time" in dry.stdout
    assert dry.stdout.splitlines()[-1] == "dry run, nothing built: 0 cached, 2 would be rebuilt, 0 skipped"
    assert sorted(p.name for p in (data / "cache").rglob("*")) == before

    assert manage("build", str(context), data=data).returncode == 0
    (context / "app.txt").write_text("two\n")
    again = manage("build", str(context), "--dry-run", "--progress", "json", data=data)
    assert again.returncode == 0, again.stderr
    (document,) = [json.loads(line) for line in again.stdout.splitlines()]
    assert [(s["instruction"], s["prediction"]) for s in document["steps"]] == [
        ("FROM studio/busybox:1.35", "cached"),
        ("COPY app.txt /app.txt", "built"),
        ("ENV MODE=x", "metadata"),
        ("RUN cat /app.txt", "built"),
    ]
    assert document["steps"][1]["reason"]["modified"] == ["app.txt"] and document["error"] is None
    built = manage("build", str(context), "--progress", "json", data=data)
    finished = [json.loads(line) for line in built.stdout.splitlines() if '"step.finished"' in line]
    assert [e["status"] for e in finished] == ["cached", "built", "metadata", "built"]


def test_a_dry_run_of_a_bad_dockerfile_names_the_line_and_exits_2(data: Path, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM studio/busybox:1.35\nRUN true\nFROBNICATE\n")
    dry = manage("build", str(context), "--dry-run", data=data)
    assert dry.returncode == 2
    assert "line 3" in dry.stderr
