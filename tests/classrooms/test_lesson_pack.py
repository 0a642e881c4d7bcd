"""The lesson pack, built for real: every lesson's starter fails its checks (a class handed it
has something to fix) and its reference solution passes them all, on busybox, the base image the
studio seeds. Each lesson builds in a store of its own, in a fresh cache, as a student's first
check would."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from builds.engine import image as images
from builds.engine.seed import busybox_rootfs
from builds.engine.store import Store
from studio.classrooms import checkrun, pack
from studio.classrooms.checks import FAIL, PASS

LESSONS = pack.lessons()


@pytest.fixture(scope="module")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("busybox") is None:
        pytest.fail("busybox-static is not installed (make test installs it)")
    return busybox_rootfs(tmp_path_factory.mktemp("base") / "busybox.tar")


@pytest.fixture
def store(tmp_path: Path, busybox: Path) -> Iterator[Store]:
    found = Store(tmp_path / "store")
    images.import_any(found, busybox, "busybox:latest")
    yield found


def statuses(results: list[dict[str, object]]) -> dict[str, object]:
    return {str(r["check"]): r["status"] for r in results}


def test_the_pack_covers_what_people_come_to_learn() -> None:
    assert [lesson.slug for lesson in LESSONS] == [
        "layers", "cache", "ordering", "dockerignore", "cleanup", "multistage", "buildargs", "cachemounts",
        "squash",
    ]
    for lesson in LESSONS:
        assert len(lesson.steps) >= 3, lesson.slug
        assert lesson.checks and lesson.starter_files(), lesson.slug
        assert "busybox:latest" in lesson.starter_files()["Dockerfile"].decode()


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.slug for lesson in LESSONS])
def test_the_starter_fails_and_the_solution_passes(lesson: pack.Lesson, store: Store) -> None:
    starter = checkrun.judge(store, lesson.starter, lesson.checks, scope="user:1")
    assert FAIL in statuses(starter).values(), statuses(starter)
    failed = [r for r in starter if r["status"] == FAIL]
    assert all(r["message"] for r in failed)

    # The same student fixes the lesson: same cache, as in class.
    solution = checkrun.judge(store, lesson.solution, lesson.checks, scope="user:1")
    assert set(statuses(solution).values()) == {PASS}, [r["message"] for r in solution]


def test_a_lessons_text_formats_but_never_injects_markup() -> None:
    from studio.classrooms.templatetags.lesson_text import lesson_markdown

    html = lesson_markdown(
        "Copy **first**: `COPY requirements.txt .`\n\n<script>alert(1)</script> "
        "[a link](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    assert "<strong>first</strong>" in html and "<code>COPY requirements.txt .</code>" in html
    assert "<script" not in html and "<img" not in html and 'href="javascript:' not in html


def test_a_starter_is_its_files_and_nothing_python_left_beside_them(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / ".dockerignore").write_text("notes.md\n")
    assert sorted(pack.files_of(tmp_path)) == [".dockerignore", "app.py"]


def test_steps_are_the_texts_level_two_headings() -> None:
    assert pack.split_steps("# Title\nIntro line.\n## One\nDo a.\n\n## Two\nDo b.\n") == [
        {"title": "Introduction", "text": "Intro line."},
        {"title": "One", "text": "Do a."},
        {"title": "Two", "text": "Do b."},
    ]
