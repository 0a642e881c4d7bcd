"""The planner foretells a build: run it, then really build, and every step the build reached must
have had the predicted verdict and the very reason the build gave. Over edit sequences a student
makes, and over every recorded BuildKit scenario."""

from __future__ import annotations

import importlib.util
import io
import os
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builds.engine import image as images
from builds.engine.context import HashCache
from builds.engine.planner import BuildOptions
from builds.engine.predict import Prediction, predict
from builds.engine.store import Store

from .conftest import BASE, Built, Project

ORACLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "oracle"
NO_LIMITS = ("limits",)

CLASSROOM = f"""FROM {BASE}
WORKDIR /app
COPY requirements.txt .
RUN cp requirements.txt /installed
COPY . .
RUN cat app.py > /built
CMD ["sh", "-c", "cat /built"]
"""


def foretell(proj: Project, **options: Any) -> tuple[Prediction, Built]:
    """Predict, then build with the same options; check the prediction against the build."""
    plan_options = {k: v for k, v in options.items() if k not in NO_LIMITS}
    predicted = predict(proj.store, BuildOptions(context=proj.root, **plan_options))
    built = proj.build(**options)
    assert_foretold(predicted, built)
    return predicted, built


def assert_foretold(predicted: Prediction, built: Built) -> None:
    actual = {s["step"]: s for s in built.steps}
    reached = [s for s in built.steps if (s["reason"] or {}).get("code") != "not_run"]
    if predicted.error is None:
        assert [r["step"] for r in predicted.steps] == sorted(actual)
    for row in predicted.steps:
        real = actual[row["step"]]
        if real in reached and row["certain"]:
            status = "built" if real["status"] == "failed" else real["status"]
            where = f"step {row['step']} ({row['instruction']})"
            assert row["prediction"] == status, where
            assert row["reason"] == real["reason"], where
            # A failed step's event has no key; a COPY --from a stage still to run has none foretold.
            if real["status"] != "failed" and row.get("cache_key") is not None:
                assert row["cache_key"] == real["cache_key"], where
            assert (row["line"], row["stage"], row["instruction"]) == (
                real["line"],
                real["stage"],
                real["instruction"],
            )


def verdicts(predicted: Prediction) -> list[tuple[str, str, str | None]]:
    """(instruction, prediction, reason code) of every filesystem step."""
    return [
        (r["instruction"], r["prediction"], (r["reason"] or {}).get("code"))
        for r in predicted.steps
        if r["keyword"] in ("RUN", "COPY", "ADD", "WORKDIR")
    ]


def classroom(project: Callable[..., Project]) -> Project:
    return project({"Dockerfile": CLASSROOM, "requirements.txt": "flask\n", "app.py": "print('hi')\n"})


class TestEditSequences:
    def test_a_students_afternoon_is_foretold_step_by_step(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        first, _ = foretell(proj)
        assert {p for _, p, _ in verdicts(first)} == {"built"}
        assert verdicts(first)[0][2] == "first_build"
        again, _ = foretell(proj)
        assert {p for _, p, _ in verdicts(again)} == {"cached"}

        proj.write({"app.py": "print('hello')\n"})
        edited, _ = foretell(proj)
        assert verdicts(edited) == [
            ("WORKDIR /app", "cached", None),
            ("COPY requirements.txt .", "cached", None),
            ("RUN cp requirements.txt /installed", "cached", None),
            ("COPY . .", "built", "files_changed"),
            ("RUN cat app.py > /built", "built", "parent_rebuilt"),
        ]
        copy = next(r for r in edited.steps if r["instruction"] == "COPY . .")
        assert copy["reason"]["modified"] == ["app.py"] and copy["line"] == 5

        proj.write({"requirements.txt": "flask\nrequests\n"})
        deps, _ = foretell(proj)
        assert verdicts(deps)[1] == ("COPY requirements.txt .", "built", "files_changed")
        assert [p for _, p, _ in verdicts(deps)] == ["cached"] + ["built"] * 4

        # Back to files an earlier build saw: their keys are in the cache again.
        proj.write({"requirements.txt": "flask\n", "app.py": "print('hi')\n"})
        reverted, _ = foretell(proj)
        assert {p for _, p, _ in verdicts(reverted)} == {"cached"}

    def test_reordered_steps_are_foretold(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo a > /a\nRUN echo b > /b\n"})
        foretell(proj)
        proj.write({"Dockerfile": f"FROM {BASE}\nRUN echo b > /b\nRUN echo a > /a\n"})
        predicted, _ = foretell(proj)
        assert verdicts(predicted) == [
            ("RUN echo b > /b", "built", "instruction_changed"),
            ("RUN echo a > /a", "built", "parent_rebuilt"),
        ]

    def test_a_build_arg_and_an_env_change_are_foretold(self, project: Callable[..., Project]) -> None:
        dockerfile = f"FROM {BASE}\nARG VERSION=1\nENV MODE={{}}\nRUN echo $VERSION $MODE > /v\n"
        proj = project({"Dockerfile": dockerfile.format("dev")})
        foretell(proj)
        by_arg, _ = foretell(proj, build_args={"VERSION": "2"})
        assert verdicts(by_arg) == [("RUN echo $VERSION $MODE > /v", "built", "build_arg_changed")]
        change = by_arg.steps[-1]["reason"]["changes"][0]
        assert change == {"name": "VERSION", "old": "1", "new": "2", "arg": True}
        proj.write({"Dockerfile": dockerfile.format("prod")})
        by_env, _ = foretell(proj, build_args={"VERSION": "2"})
        assert verdicts(by_env) == [("RUN echo $VERSION $MODE > /v", "built", "env_changed")]
        metadata = [r for r in by_env.steps if r["keyword"] in ("ARG", "ENV")]
        assert all(r["prediction"] == "metadata" and r["metadata"] for r in metadata)

    def test_a_base_named_by_the_manifest_digest_it_was_pulled_as_is_found(
        self, project: Callable[..., Project], store: Store
    ) -> None:
        from builds.engine.registry.known import KnownBlobs

        image = store.get_image(BASE)
        assert image is not None
        manifest = "sha256:" + "ab" * 32
        KnownBlobs(store).remember_manifest(manifest, image.digest)
        proj = project({"Dockerfile": f"FROM example.test/busybox@{manifest}\nRUN echo one > /one\n"})
        foretell(proj)
        predicted, _ = foretell(proj)
        assert predicted.error is None and verdicts(predicted) == [("RUN echo one > /one", "cached", None)]

    def test_a_changed_base_image_is_foretold(
        self, project: Callable[..., Project], store: Store, busybox_tar: Path, tmp_path: Path
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo one > /one\n"})
        foretell(proj)
        images.import_any(store, _with_file(busybox_tar, tmp_path / "alt.tar", "etc/alt", b"alt\n"), BASE)
        predicted, _ = foretell(proj)
        assert verdicts(predicted) == [("RUN echo one > /one", "built", "base_changed")]

    def test_no_cache_is_foretold(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        foretell(proj)
        predicted, _ = foretell(proj, no_cache=True)
        assert {(p, c) for _, p, c in verdicts(predicted)} == {("built", "no_cache")}

    def test_a_target_skips_the_stages_it_does_not_need(self, project: Callable[..., Project]) -> None:
        proj = project(
            {
                "Dockerfile": (
                    f"FROM {BASE} AS builder\nRUN echo app > /app\n"
                    f"FROM {BASE} AS tests\nRUN echo tests > /tests\n"
                    f"FROM {BASE} AS final\nCOPY --from=builder /app /app\nRUN cat /app > /final\n"
                )
            }
        )
        predicted, _ = foretell(proj, target="final")
        skipped = [r for r in predicted.steps if r["prediction"] == "skipped"]
        assert [r["instruction"] for r in skipped] == [f"FROM {BASE} AS tests", "RUN echo tests > /tests"]
        assert skipped[0]["reason"]["code"] == "not_needed"
        tests_only, _ = foretell(proj, target="tests")
        assert [r["prediction"] for r in tests_only.steps] == ["skipped"] * 2 + ["cached", "built"] + [
            "skipped"
        ] * 3

    def test_the_same_step_in_two_stages_is_built_once_and_foretold_so(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project(
            {
                "Dockerfile": (
                    f"FROM {BASE} AS one\nRUN echo shared > /s\n"
                    f"FROM {BASE} AS two\nRUN echo shared > /s\nRUN echo two > /t\n"
                    f"FROM {BASE}\nCOPY --from=one /s /one\nCOPY --from=two /t /two\n"
                )
            }
        )
        predicted, _ = foretell(proj)
        second = next(r for r in predicted.steps if r["stage"] == "two" and r["keyword"] == "RUN")
        assert second["reason"]["code"] == "same_step"

    def test_copy_from_a_stage_that_will_be_rebuilt_is_an_uncertain_rebuild(
        self, project: Callable[..., Project]
    ) -> None:
        dockerfile = (
            f"FROM {BASE} AS builder\nRUN echo compile > /c && echo {{}} > /noise\n"
            f"FROM {BASE}\nCOPY --from=builder /c /c\nRUN cat /c > /final\n"
        )
        proj = project({"Dockerfile": dockerfile.format("a")})
        foretell(proj)
        proj.write({"Dockerfile": dockerfile.format("b")})
        predicted, built = foretell(proj)
        copy = next(r for r in predicted.steps if r["instruction"].startswith("COPY --from"))
        assert copy["prediction"] == "built" and copy["certain"] is False
        assert copy["reason"]["code"] == "source_rebuilt" and copy["reason"]["from"] == "builder"
        assert predicted.steps[-1]["certain"] is False
        # The copied file came out the same, which only the build could know.
        assert built.step("COPY --from=builder")["status"] == "cached"

    def test_a_failing_step_is_foretold_as_a_rebuild_up_to_where_the_build_stops(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo one > /one\nRUN exit 3\nRUN echo three\n"})
        predicted, built = foretell(proj)
        assert built.result.status == "failed"
        assert predicted.error is None  # a command's failure shows only when it runs


class TestErrors:
    def test_a_parse_error_names_the_line(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo ok\nFROBNICATE now\n"})
        predicted = predict(proj.store, BuildOptions(context=proj.root))
        assert predicted.steps == []
        assert predicted.error is not None and predicted.error["line"] == 3
        assert "FROBNICATE" in predicted.error["message"].upper()

    def test_an_unknown_base_image_is_named_with_its_line(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE} AS ok\nRUN true\nFROM nosuch/image:1\nRUN true\n"})
        predicted = predict(proj.store, BuildOptions(context=proj.root))
        assert predicted.error is not None
        assert "nosuch/image:1" in predicted.error["message"] and predicted.error["line"] == 3
        assert [r["line"] for r in predicted.steps] == [1, 2]

    def test_a_missing_copy_source_stops_the_prediction_at_its_line(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN true\nCOPY missing.txt /x\nRUN true\n"})
        predicted = predict(proj.store, BuildOptions(context=proj.root))
        assert predicted.error is not None
        assert predicted.error["line"] == 3 and predicted.error["step"] == 3
        assert "missing.txt" in predicted.error["message"]
        assert [r["step"] for r in predicted.steps] == [1, 2]

    def test_an_unknown_target_is_named(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE} AS app\nRUN true\n"})
        predicted = predict(proj.store, BuildOptions(context=proj.root, target="nope"))
        assert predicted.error is not None and "nope" in predicted.error["message"]


class TestItChangesNothing:
    def test_predicting_writes_nothing_to_the_store(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        proj.build()
        proj.write({"app.py": "print('changed')\n", "Dockerfile": CLASSROOM + "RUN echo more\n"})
        before = _tree(proj.store.root)
        predict(proj.store, BuildOptions(context=proj.root, no_cache=True))
        predict(proj.store, BuildOptions(context=proj.root))
        assert _tree(proj.store.root) == before

    def test_a_ten_step_prediction_is_quick_with_a_warm_hash_cache(
        self, project: Callable[..., Project], tmp_path: Path
    ) -> None:
        files = {f"src/m{i}.py": f"x = {i}\n" * 50 for i in range(100)}
        dockerfile = CLASSROOM + "".join(f"RUN echo {i} > /s{i}\n" for i in range(3))
        proj = project({"Dockerfile": dockerfile, "requirements.txt": "flask\n", "app.py": "1\n", **files})
        proj.build()
        os.utime(proj.root / "app.py", (1, 1))  # out of the racy window, so its digest is kept
        hashes = HashCache(tmp_path / "plan-hashcache")
        predict(proj.store, BuildOptions(context=proj.root), hash_cache=hashes)
        took = []
        for _ in range(5):
            started = time.perf_counter()
            predicted = predict(proj.store, BuildOptions(context=proj.root), hash_cache=hashes)
            took.append(time.perf_counter() - started)
        assert len(predicted.steps) == 10
        assert min(took) < 0.3, took


def _tree(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and p.name != "hashcache"
    }


def _with_file(base: Path, dest: Path, name: str, data: bytes) -> Path:
    with tarfile.open(base) as tin, tarfile.open(dest, "w") as tout:
        for member in tin.getmembers():
            tout.addfile(member, tin.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tout.addfile(info, io.BytesIO(data))
    return dest


# -- BuildKit's recorded scenarios ------------------------------------------------------------------


def _oracle() -> Any:
    spec = importlib.util.spec_from_file_location("run_oracle", ORACLE / "run_oracle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCENARIOS = sorted(p.name for p in (ORACLE / "scenarios").glob("*.json")) if ORACLE.is_dir() else []


@pytest.mark.skipif(not SCENARIOS, reason="../shared/oracle is not here")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_recorded_scenario_is_foretold(scenario: str, tmp_path: Path) -> None:
    """Each build of the scenario predicted, then built: the same verdicts and reasons."""
    oracle = _oracle()
    (found,) = oracle.load_scenarios(str(ORACLE / "scenarios"), [scenario])
    store = Store(tmp_path / "store")
    images.import_any(store, Path(oracle.BASE_TAR), oracle.BASE_IMAGE)
    context = oracle.Context(str(tmp_path / "ctx"))
    proj = Project(Path(context.root), store)
    for number, spec in enumerate(found["builds"]):
        for image in ([*found.get("images", [])] if number == 0 else []) + spec.get("images", []):
            tar = oracle.make_image_tar(image, str(tmp_path / "image.tar"))
            images.import_any(store, Path(tar), image["name"])
        context.apply(spec, number)
        options: dict[str, Any] = {
            "build_args": spec.get("build_args", {}),
            "target": spec.get("target"),
            "no_cache": spec.get("no_cache", False),
        }
        if spec.get("dockerfile"):
            options["dockerfile"] = proj.root / spec["dockerfile"]
        foretell(proj, **options)
