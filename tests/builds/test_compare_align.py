"""Two builds' steps lined up: the same step on one row whatever was inserted, removed, moved or
renamed, and the first row where the builds part. Steps here are shaped as the build API returns
them, with cache keys chained as the engine chains them (each key covers the one below it)."""

from __future__ import annotations

import hashlib
from typing import Any

from builds.compare.align import Row, align, first_parting, keys_equal, normalize, parted


def build(dockerfile: str, *, files: str = "v1", failed_at: int | None = None) -> list[dict[str, Any]]:
    """The steps a build of `dockerfile` reports. COPY keys also cover `files` (the context);
    from `failed_at` (a step number) on, the step failed and the rest did not run."""
    steps: list[dict[str, Any]] = []
    keys: dict[str, str] = {}
    stage, key = "0", ""
    for n, line in enumerate((ln for ln in dockerfile.strip().splitlines()), start=1):
        words = line.split()
        if words[0] == "FROM":
            stage = words[3].lower() if len(words) == 4 else str(len(keys))
            key = keys.get(words[1].lower(), "base:" + words[1])
        elif words[0] in ("COPY", "ADD"):
            key = _h(key, line, files)
        else:
            key = _h(key, line)
        keys[stage] = key
        status, cache_key = "built", key
        if failed_at is not None and n >= failed_at:
            status, cache_key = ("failed" if n == failed_at else "skipped"), None
        steps.append(
            {
                "step": n,
                "stage": stage,
                "instruction": line,
                "line": n,
                "keyword": words[0],
                "status": status,
                "cache_key": cache_key,
                "duration_ms": 10 * n,
            }
        )
    return steps


def _h(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("|".join(parts).encode()).hexdigest()


def table(rows: list[Row]) -> list[tuple[str | None, str | None, str]]:
    return [
        (row.a["instruction"] if row.a else None, row.b["instruction"] if row.b else None, row.kind)
        for row in rows
    ]


APP = """
FROM busybox AS base
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN make
"""


def test_two_identical_builds_pair_every_step_with_equal_keys_and_never_part() -> None:
    rows = align(build(APP), build(APP))
    assert [kind for *_, kind in table(rows)] == ["same"] * 6
    assert all(keys_equal(row) for row in rows)
    assert first_parting(rows) is None


def test_an_edited_file_parts_the_builds_at_the_copy_that_reads_it() -> None:
    rows = align(build(APP, files="v1"), build(APP, files="v2"))
    assert [kind for *_, kind in table(rows)] == ["same"] * 6
    first = first_parting(rows)
    assert first is not None and rows[first].a["instruction"] == "COPY requirements.txt ."
    assert [keys_equal(row) for row in rows] == [True, True, False, False, False, False]


def test_an_inserted_step_is_a_gap_on_the_first_side_and_the_rest_still_pair() -> None:
    edited = APP.replace("RUN make", "RUN make test\nRUN make")
    edited = edited.replace("WORKDIR /app\n", "WORKDIR /app\nENV CI=1\n")
    rows = align(build(APP), build(edited))
    assert table(rows) == [
        ("FROM busybox AS base", "FROM busybox AS base", "same"),
        ("WORKDIR /app", "WORKDIR /app", "same"),
        (None, "ENV CI=1", "added"),
        ("COPY requirements.txt .", "COPY requirements.txt .", "same"),
        ("RUN pip install -r requirements.txt", "RUN pip install -r requirements.txt", "same"),
        ("COPY . .", "COPY . .", "same"),
        (None, "RUN make test", "added"),
        ("RUN make", "RUN make", "same"),
    ]
    assert first_parting(rows) == 2


def test_a_removed_step_is_a_gap_on_the_second_side() -> None:
    rows = align(build(APP), build(APP.replace("RUN pip install -r requirements.txt\n", "")))
    assert table(rows)[3] == ("RUN pip install -r requirements.txt", None, "removed")
    assert [kind for *_, kind in table(rows)] == ["same", "same", "same", "removed", "same", "same"]
    assert first_parting(rows) == 3


def test_an_edited_step_shares_its_row_with_its_old_self() -> None:
    rows = align(build(APP), build(APP.replace("RUN pip install -r", "RUN pip install --no-cache-dir -r")))
    assert table(rows)[3] == (
        "RUN pip install -r requirements.txt",
        "RUN pip install --no-cache-dir -r requirements.txt",
        "changed",
    )
    assert len(rows) == 6
    assert first_parting(rows) == 3


def test_a_step_of_another_keyword_in_its_place_is_two_gaps_not_a_pair() -> None:
    rows = align(build(APP), build(APP.replace("RUN pip install -r requirements.txt", "ENV PIP=1")))
    assert ("RUN pip install -r requirements.txt", None, "removed") in table(rows)
    assert (None, "ENV PIP=1", "added") in table(rows)


def test_reordered_steps_each_keep_one_row_marked_moved() -> None:
    reordered = """
FROM busybox AS base
WORKDIR /app
COPY . .
COPY requirements.txt .
RUN pip install -r requirements.txt
RUN make
"""
    rows = align(build(APP), build(reordered))
    assert len(rows) == 6, "each step once: a moved step is not also a gap"
    moved = [row for row in rows if row.kind == "moved"]
    assert len(moved) == 1 and moved[0].a["instruction"] == "COPY . ." == moved[0].b["instruction"]
    assert (moved[0].a["line"], moved[0].b["line"]) == (5, 3)
    # The cache can tell: the first step that now sits on a different parent is where they part.
    assert rows[first_parting(rows)].b["instruction"] == "COPY requirements.txt ."


MULTI = """
FROM busybox AS deps
RUN fetch deps
FROM busybox AS builder
COPY --from=deps /deps /deps
COPY src /src
RUN compile
FROM busybox AS runtime
COPY --from=builder /out /app
CMD run
"""


def test_multi_stage_builds_pair_stage_by_stage_and_a_new_stage_is_all_gaps() -> None:
    edited = MULTI.replace(
        "FROM busybox AS runtime", "FROM busybox AS tests\nRUN test\nFROM busybox AS runtime"
    )
    rows = align(build(MULTI), build(edited))
    assert table(rows) == [
        ("FROM busybox AS deps", "FROM busybox AS deps", "same"),
        ("RUN fetch deps", "RUN fetch deps", "same"),
        ("FROM busybox AS builder", "FROM busybox AS builder", "same"),
        ("COPY --from=deps /deps /deps", "COPY --from=deps /deps /deps", "same"),
        ("COPY src /src", "COPY src /src", "same"),
        ("RUN compile", "RUN compile", "same"),
        (None, "FROM busybox AS tests", "added"),
        (None, "RUN test", "added"),
        ("FROM busybox AS runtime", "FROM busybox AS runtime", "same"),
        ("COPY --from=builder /out /app", "COPY --from=builder /out /app", "same"),
        ("CMD run", "CMD run", "same"),
    ]
    assert first_parting(rows) == 6


def test_a_renamed_stage_pairs_with_its_old_self_by_content_and_references_follow_it() -> None:
    renamed = MULTI.replace("AS builder", "AS build").replace("--from=builder", "--from=build")
    rows = align(build(MULTI), build(renamed))
    assert [kind for *_, kind in table(rows)] == ["same"] * 9
    assert table(rows)[2] == ("FROM busybox AS builder", "FROM busybox AS build", "same")
    assert table(rows)[7] == ("COPY --from=builder /out /app", "COPY --from=build /out /app", "same")
    assert rows[2].a["stage"] == "builder" and rows[2].b["stage"] == "build"


def test_unnamed_stages_pair_by_position_and_content() -> None:
    plain = "FROM busybox\nRUN one\nFROM busybox\nCOPY --from=0 /x /x\nRUN two\n"
    edited = plain.replace("RUN two", "RUN two more")
    rows = align(build(plain), build(edited))
    assert [kind for *_, kind in table(rows)] == ["same", "same", "same", "same", "changed"]


def test_reordered_stages_still_pair_by_name() -> None:
    swapped = """
FROM busybox AS builder
COPY --from=deps /deps /deps
COPY src /src
RUN compile
FROM busybox AS deps
RUN fetch deps
FROM busybox AS runtime
COPY --from=builder /out /app
CMD run
"""
    rows = align(build(MULTI), build(swapped))
    assert len(rows) == 9
    assert all(row.a is not None and row.b is not None for row in rows)
    assert all(row.a["stage"] == row.b["stage"] for row in rows)


def test_one_side_failed_midway_parts_at_the_failed_step_and_the_rest_did_not_run() -> None:
    rows = align(build(APP), build(APP, failed_at=4))
    assert [kind for *_, kind in table(rows)] == ["same"] * 6
    first = first_parting(rows)
    assert first == 3 and rows[first].b["status"] == "failed"
    assert keys_equal(rows[3]) is None, "a failed step has no key to compare"
    assert all(parted(row) for row in rows[3:])


def test_steps_without_a_key_part_only_when_their_text_or_outcome_differs() -> None:
    a = build("FROM busybox AS base\nENV A=1\nCMD x\n")
    b = build("FROM busybox AS base\nENV A=2\nCMD x\n")
    for steps in (a, b):
        for step in steps[1:]:
            step["cache_key"], step["status"] = None, "cached"  # metadata steps have no key
    rows = align(a, b)
    assert [parted(row) for row in rows] == [False, True, False]


def test_normalize_ignores_spacing_case_and_a_from_s_own_name() -> None:
    assert normalize("from  busybox   AS  Builder") == "FROM busybox"
    assert normalize("COPY --from=build /a /b", {"build": "builder"}) == "COPY --from=builder /a /b"
    assert normalize("FROM build AS final", {"build": "builder"}) == "FROM builder"


def test_a_dockerfile_rewritten_line_by_line_pairs_each_step_with_its_rewrite() -> None:
    old = "\n".join(["FROM busybox AS base"] + [f"RUN echo step {i} && true" for i in range(200)])
    new = "\n".join(["FROM busybox AS base"] + [f"RUN printf other {i} || false" for i in range(200)])
    rows = align(build(old), build(new))
    assert len(rows) == 201
    assert [row.kind for row in rows[1:]] == ["changed"] * 200
    assert all(row.a["line"] == row.b["line"] for row in rows)
