"""The exercise checks on their own: what each says about a build, and why. These are the
sentences a student reads beside pass, fail or not yet."""

from __future__ import annotations

import pytest

from studio.classrooms.checks import (
    FAIL,
    NOT_YET,
    PASS,
    BuildFacts,
    StepFacts,
    clean_checks,
    describe,
    evaluate,
    initial,
    matching,
    merge,
)
from studio.errors import Rejected

REBUILD = {"kind": "rebuild_after_change", "file": "app.py", "max_steps": 2}


def steps(*statuses: str) -> list[StepFacts]:
    instructions = [
        "FROM busybox",
        "WORKDIR /app",
        "COPY requirements.txt .",
        "RUN install",
        "COPY . .",
        "RUN build",
    ]
    return [StepFacts(i, instructions[i - 1], i, s) for i, s in enumerate(statuses, 1)]


def build(number: int = 5, **facts: object) -> BuildFacts:
    base: dict[str, object] = {"status": "succeeded", "changed": {"app.py"}, "previous": number - 1}
    base.update(facts)
    return BuildFacts(number=number, **base)  # type: ignore[arg-type]


class TestRebuildAfterChange:
    def test_it_passes_when_only_the_last_steps_rebuild(self) -> None:
        result = evaluate(
            REBUILD, build(steps=steps("cached", "cached", "cached", "cached", "built", "built"))
        )
        assert result.status == PASS
        assert (
            result.message
            == "Build #5 changed only app.py since build #4, and 2 steps rebuilt (at most 2 allowed)."
        )

    def test_it_fails_naming_every_step_that_rebuilt(self) -> None:
        result = evaluate(REBUILD, build(steps=steps("cached", "cached", "built", "built", "built", "built")))
        assert result.status == FAIL
        assert "but 4 steps rebuilt (at most 2 allowed)" in result.message
        assert "COPY requirements.txt . (line 3)" in result.message and "RUN build (line 6)" in result.message

    def test_it_waits_for_a_first_build_to_compare_with(self) -> None:
        result = evaluate(REBUILD, build(number=1, changed=None, previous=None, steps=steps("built")))
        assert result.status == NOT_YET
        assert "change only app.py and build again" in result.message

    def test_it_cannot_judge_a_build_where_other_files_changed_too(self) -> None:
        result = evaluate(REBUILD, build(changed={"app.py", "Dockerfile"}, steps=steps("built", "built")))
        assert result.status == NOT_YET
        assert result.message.startswith("Not yet: build #5 changed Dockerfile and app.py since build #4")

    def test_it_cannot_judge_a_failed_build(self) -> None:
        assert evaluate(REBUILD, build(status="failed", steps=steps("failed"))).status == NOT_YET

    def test_only_steps_that_were_built_count_as_rebuilt(self) -> None:
        result = evaluate(
            REBUILD, build(steps=steps("cached", "cached", "cached", "cached", "cached", "built"))
        )
        assert result.status == PASS and "1 step rebuilt" in result.message


class TestImageChecks:
    def test_image_size_passes_under_the_limit_and_fails_over_it(self) -> None:
        check = {"kind": "image_size", "max_mb": 3}
        assert (
            evaluate(check, build(image_size=2_100_000)).message == "Build #5's image is 2.1 MB, under 3 MB."
        )
        over = evaluate(check, build(image_size=3_000_000))
        assert over.status == FAIL and over.message == "Build #5's image is 3.0 MB, over the 3 MB allowed."

    def test_layers(self) -> None:
        check = {"kind": "layers", "max": 4}
        assert evaluate(check, build(image_layers=4)).status == PASS
        too_many = evaluate(check, build(image_layers=6))
        assert too_many.status == FAIL and "6 layers, more than the 4 allowed" in too_many.message

    def test_a_build_without_an_image_is_not_judged(self) -> None:
        for check in ({"kind": "image_size", "max_mb": 3}, {"kind": "layers", "max": 4}):
            assert evaluate(check, build(status="failed")).status == NOT_YET

    def test_absent_path_looks_at_the_final_image(self) -> None:
        check = {"kind": "absent_path", "path": "/usr/bin/gcc"}
        clean = evaluate(check, build(image_paths=lambda: {"bin/sh", "app/main"}))
        assert clean.status == PASS and clean.message == "Build #5's image holds no /usr/bin/gcc."
        dirty = evaluate(check, build(image_paths=lambda: {"bin/sh", "usr/bin/gcc"}))
        assert dirty.status == FAIL and dirty.message.startswith("Build #5's image still holds /usr/bin/gcc:")

    def test_absent_path_matches_a_directory_and_patterns(self) -> None:
        paths = {"usr/lib/gcc", "usr/lib/gcc/x86/cc1", "usr/lib/gccgo", "bin/sh"}
        assert matching(paths, "/usr/lib/gcc") == ["usr/lib/gcc", "usr/lib/gcc/x86/cc1"]
        assert matching(paths, "/usr/lib/gcc*") == ["usr/lib/gcc", "usr/lib/gcc/x86/cc1", "usr/lib/gccgo"]
        assert matching(paths, "/opt") == []


class TestMerging:
    def test_a_build_that_cannot_tell_keeps_the_earlier_verdict(self) -> None:
        checks = [REBUILD, {"kind": "layers", "max": 9}]
        first = merge(initial(checks), checks, build(steps=steps("cached", "built"), image_layers=3))
        assert [r["status"] for r in first] == [PASS, PASS]
        later = merge(first, checks, build(number=6, changed={"Dockerfile"}, image_layers=12))
        assert [r["status"] for r in later] == [PASS, FAIL]
        assert later[0]["build"] == 5 and later[1]["build"] == 6
        assert later[0]["check"] == "After changing app.py, at most 2 steps rebuild"

    def test_before_any_build_everything_is_not_yet(self) -> None:
        assert {r["status"] for r in initial([REBUILD])} == {NOT_YET}


class TestReadingChecks:
    def test_it_accepts_and_tidies_every_kind(self) -> None:
        cleaned = clean_checks(
            [
                {"kind": "rebuild_after_change", "file": "./app.py", "max_steps": 1},
                {"kind": "image_size", "max_mb": 5},
                {"kind": "layers", "max": 4},
                {"kind": "absent_path", "path": "usr/bin/gcc/"},
            ]
        )
        assert cleaned[0]["file"] == "app.py" and cleaned[3]["path"] == "/usr/bin/gcc"
        assert [describe(c) for c in cleaned] == [
            "After changing app.py, at most 1 step rebuild",
            "The image is under 5 MB",
            "The image has no more than 4 layers",
            "The final image contains no /usr/bin/gcc",
        ]

    @pytest.mark.parametrize(
        ("checks", "message"),
        [
            ({"kind": "layers"}, "checks must be a list"),
            ([{"kind": "speed"}], "check 1: kind must be one of"),
            (
                [{"kind": "layers", "max": 3}, {"kind": "layers", "max": "three"}],
                "check 2: max must be a whole number",
            ),
            ([{"kind": "layers", "max": True}], "check 1: max must be a whole number"),
            ([{"kind": "absent_path", "path": " "}], "check 1: path must be a path"),
            ([{"kind": "layers", "max": 3, "min": 1}], "check 1: unknown field 'min'"),
            (
                [{"kind": "edit_rebuilds", "file": "../../etc/passwd", "max_steps": 1}],
                "check 1: file must be a file's path inside the build context",
            ),
            ([{"kind": "edit_rebuilds", "file": "src//a.py", "max_steps": 1}], "check 1: file must be"),
        ],
    )
    def test_a_bad_check_is_refused_naming_it(self, checks: object, message: str) -> None:
        with pytest.raises(Rejected) as refused:
            clean_checks(checks)
        assert message in refused.value.message


class TestChecksOnTheirOwnBuilds:
    EDIT = {"kind": "edit_rebuilds", "file": "app.py", "max_steps": 1}

    def test_edit_rebuilds_counts_the_steps_of_the_edited_build_with_their_reasons(self) -> None:
        edited = [
            StepFacts(1, "FROM busybox", 1, "cached"),
            StepFacts(2, "COPY . .", 2, "built", "Rebuilt because files it copies changed: app.py"),
            StepFacts(3, "RUN install", 3, "built", "Rebuilt because the layer below it was rebuilt."),
        ]
        failed = evaluate(self.EDIT, build(edits={"app.py": edited}))
        assert failed.status == FAIL
        assert "2 steps rebuilt (at most 1 allowed)" in failed.message
        assert "line 3: RUN install (Rebuilt because the layer below it was rebuilt.)" in failed.message
        passed = evaluate(self.EDIT, build(edits={"app.py": edited[:2]}))
        assert passed.status == PASS

    def test_edit_rebuilds_is_not_yet_without_a_check_build_and_fails_without_the_file(self) -> None:
        assert evaluate(self.EDIT, build()).status == NOT_YET
        missing = evaluate(self.EDIT, build(edits={"app.py": None}))
        assert missing.status == FAIL and "context has no app.py" in missing.message
        broken = evaluate(self.EDIT, build(edits={"app.py": "step 3 failed"}))
        assert broken.status == FAIL and "the build failed: step 3 failed" in broken.message

    def test_present_path_fails_when_the_image_lacks_it(self) -> None:
        check = {"kind": "present_path", "path": "/opt/deps/flask"}
        assert evaluate(check, build(image_paths=lambda: {"opt/deps/flask"})).status == PASS
        assert evaluate(check, build(image_paths=lambda: {"opt/deps"})).status == FAIL
        assert evaluate(check, build(status="failed")).status == NOT_YET
