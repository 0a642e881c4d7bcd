"""Why two builds part at a row, said between the two builds rather than against each project's
own history: what a student comparing their build with a classmate's needs to read."""

from __future__ import annotations

from typing import Any

from builds.compare.align import Row
from builds.compare.parting import why_parted


def step(instruction: str, **fields: Any) -> dict[str, Any]:
    keyword = instruction.split()[0]
    return {"instruction": instruction, "keyword": keyword, "line": 3, "status": "built", **fields}


def test_a_step_on_one_side_only_says_which_build_has_it() -> None:
    assert why_parted(Row(None, step("RUN make test"), "added"))["message"] == "Only build B has this step."
    assert why_parted(Row(step("RUN make test"), None, "removed"))["code"] == "only_in_a"


def test_an_edited_instruction_is_quoted_from_both_builds() -> None:
    said = why_parted(Row(step("RUN make"), step("RUN make -j4"), "changed"))
    assert said == {
        "code": "instruction_differs",
        "message": "The instruction differs: `RUN make` in A, `RUN make -j4` in B.",
    }


def test_a_copy_names_the_files_that_differ_between_the_two_builds() -> None:
    files = [
        {"path": "app.py", "change": "changed"},
        {"path": "new.py", "change": "added"},
        {"path": "requirements.txt", "change": "same"},
    ]
    said = why_parted(Row(step("COPY . ."), step("COPY . ."), "same"), files=files)
    assert said["code"] == "files_differ"
    assert said["message"] == "The files it copies differ: app.py changed; new.py only in B."


def test_build_arguments_and_no_cache_are_named() -> None:
    row = Row(step("RUN echo $V"), step("RUN echo $V"), "same")
    said = why_parted(row, args=({"V": "1"}, {"V": "2", "W": "x"}))
    assert said["message"] == "The build arguments differ: V (1 → 2), W (unset → x)."
    assert why_parted(row, no_cache=(False, True))["message"].startswith("Build B ran with --no-cache")


def test_a_failed_or_stopped_side_and_a_different_base_are_said_plainly() -> None:
    failed = Row(step("RUN make"), step("RUN make", status="failed"), "same")
    assert why_parted(failed)["message"] == "Build B failed at this step."
    stopped = Row(step("CMD x", status="skipped"), step("CMD x", status="cached"), "same")
    assert why_parted(stopped)["message"] == "Build A stopped before this step."
    base = Row(
        step("FROM busybox", base={"ref": "busybox", "digest": "sha256:aaaaaaaaaaaaaaaaaaaa"}),
        step("FROM busybox", base={"ref": "busybox", "digest": "sha256:bbbbbbbbbbbbbbbbbbbb"}),
        "same",
    )
    assert why_parted(base)["message"] == (
        "The base image differs: busybox (sha256:aaaaaaaaaaaa) in A, busybox (sha256:bbbbbbbbbbbb) in B."
    )


def test_with_nothing_to_point_at_it_says_what_else_a_key_covers() -> None:
    said = why_parted(Row(step("RUN make"), step("RUN make"), "same"))
    assert said["code"] == "inputs_differ"
