"""The edit_push check: the check changes a file in a copy, builds it in the student's cache and
counts the bytes of the layers a registry holding the first image lacks. A squashed image resends
all of itself; a small layer on top resends a few bytes. Real builds, on the seeded busybox."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builds.engine.store import Store
from studio.classrooms import checkrun, pack
from studio.classrooms.checks import FAIL, NOT_YET, PASS, BuildFacts, clean_checks, describe, evaluate
from studio.errors import Rejected

from .test_lesson_pack import busybox, store  # noqa: F401 (fixtures)

LESSON = next(lesson for lesson in pack.lessons() if lesson.slug == "squash")
# Everything squashed, the app too: small, few layers, and every edit resends it all.
ALL_SQUASHED = """FROM busybox:latest AS tools
RUN mkdir -p /opt/tools && dd if=/dev/urandom of=/opt/tools/sdk.bin bs=1024 count=1536 2>/dev/null
RUN rm /opt/tools/sdk.bin && echo "toolkit 1.0" > /opt/tools/VERSION
COPY app.sh /app/app.sh

FROM scratch
COPY --from=tools / /
CMD ["sh", "/app/app.sh"]
"""


def context(tmp_path: Path, dockerfile: str) -> Path:
    root = tmp_path / "ctx"
    shutil.copytree(LESSON.solution, root)
    (root / "Dockerfile").write_text(dockerfile)
    return root


def test_a_squashed_image_passes_on_size_and_fails_on_its_next_push(tmp_path: Path, store: Store) -> None:  # noqa: F811
    results = checkrun.judge(store, context(tmp_path, ALL_SQUASHED), LESSON.checks, scope="user:1")
    found = {str(r["check"]): r for r in results}
    assert found["The image is under 3 MB"]["status"] == PASS
    assert found["The image has no more than 3 layers"]["status"] == PASS
    push = found["When the check changes app.sh, a push sends at most 10 KB"]
    assert push["status"] == FAIL
    assert "more than the 10 KB allowed" in str(push["message"])
    sent = float(str(push["message"]).split("a push sends ")[1].split(" KB")[0])
    assert sent > 1000  # the whole merged busybox, again


def test_the_starter_pushes_little_but_is_big(tmp_path: Path, store: Store) -> None:  # noqa: F811
    results = checkrun.judge(store, LESSON.starter, LESSON.checks, scope="user:2")
    found = {str(r["check"]): r["status"] for r in results}
    assert found["When the check changes app.sh, a push sends at most 10 KB"] == PASS
    assert found["The image is under 3 MB"] == FAIL
    assert found["The image has no more than 3 layers"] == FAIL


def test_edit_push_is_not_yet_before_a_build_and_names_a_missing_file() -> None:
    check = {"kind": "edit_push", "file": "app.sh", "max_kb": 10}
    assert evaluate(check, BuildFacts(number=1, status="failed")).status == NOT_YET
    assert evaluate(check, BuildFacts(number=2, status="succeeded")).status == NOT_YET
    missing = evaluate(check, BuildFacts(number=3, status="succeeded", pushes={}))
    assert missing.status == FAIL and "has no app.sh" in missing.message
    failed = evaluate(check, BuildFacts(number=4, status="succeeded", pushes={"app.sh": "step 2 failed"}))
    assert failed.status == FAIL and "the build failed: step 2 failed" in failed.message
    assert describe(check) == "When the check changes app.sh, a push sends at most 10 KB"


@pytest.mark.parametrize("bad", [
    {"kind": "edit_push", "file": "../etc/passwd", "max_kb": 10},
    {"kind": "edit_push", "file": "app.sh", "max_kb": -1},
    {"kind": "edit_push", "file": "app.sh"},
    {"kind": "edit_push", "file": "app.sh", "max_kb": 10, "extra": 1},
])
def test_a_bad_edit_push_check_is_refused_naming_it(bad: dict[str, object]) -> None:
    with pytest.raises(Rejected, match="check 1"):
        clean_checks([bad])
