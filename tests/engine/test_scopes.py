"""Cache scopes: every scope has its own cache index and cache mounts over one shared set of
layers, and a reason never reads outside its scope."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from builds.engine.store import Store

from .conftest import BASE, Built, Project
from .test_builder import CLASSROOM, classroom
from .test_run_mounts import read

MOUNT = (f"FROM {BASE}\n"
         "RUN --mount=type=cache,target=/pip sh -c "
         "'ls /pip > /seen; echo planted > /pip/wheel'\n")


def statuses(built: Built) -> list[str]:
    return [v for _, v in built.verdicts()]


class TestScopes:
    def test_the_same_dockerfile_in_two_scopes_is_built_cold_in_each(
        self, project: Callable[..., Project]
    ) -> None:
        proj = classroom(project)
        alice = proj.build(cache_scope="user:1", history_id="project:1")
        bob = proj.build(cache_scope="user:2", history_id="project:2")
        assert statuses(alice) == ["built"] * 5
        assert statuses(bob) == ["built"] * 5
        assert bob.step("WORKDIR")["reason"]["code"] == "first_build"
        assert statuses(proj.build(cache_scope="user:2", history_id="project:2")) == ["cached"] * 5
        # (Their layers are not compared: a layer holds its files' and folders' mtimes, so the same
        # steps run a second apart make different layers, with BuildKit as here.)

    def test_each_persons_edit_is_explained_by_their_own_builds(
        self, project: Callable[..., Project]
    ) -> None:
        proj = classroom(project)
        proj.build(cache_scope="user:1", history_id="project:1")
        proj.build(cache_scope="user:2", history_id="project:2")
        proj.write({"app.py": "print('bob')\n"})
        reason = proj.build(cache_scope="user:2", history_id="project:2").step("COPY . .")["reason"]
        assert reason["code"] == "files_changed" and reason["modified"] == ["app.py"]

    def test_a_shared_class_scope_serves_a_classmates_layers_and_explains_edits_against_them(
        self, project: Callable[..., Project]
    ) -> None:
        proj = classroom(project)
        proj.build(cache_scope="class:3", history_id="project:1")
        second = proj.build(cache_scope="class:3", history_id="project:2")
        assert statuses(second) == ["cached"] * 5
        proj.write({"app.py": "print('edited')\n"})
        edited = proj.build(cache_scope="class:3", history_id="project:2")
        reason = edited.step("COPY . .")["reason"]
        assert reason["code"] == "files_changed" and "app.py" in reason["message"]

    def test_the_command_lines_scope_is_the_index_the_store_had_before_scopes(
        self, project: Callable[..., Project]
    ) -> None:
        proj = classroom(project)
        proj.build()
        store = proj.store
        # Where a store made before scopes kept its one index: the default scope reads it as is.
        assert any((store.root / "cache").rglob("*.json"))
        assert not (store.root / "scopes").exists()
        assert statuses(proj.build()) == ["cached"] * 5
        assert statuses(proj.build(cache_scope="ci")) == ["built"] * 5
        assert statuses(proj.build()) == ["cached"] * 5

    def test_a_bad_scope_name_is_refused(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        built = proj.build(cache_scope="x\n")
        assert built.result.exit_code == 2
        assert "cache scope" in built.finished["error"]["message"]


class TestCacheMountsAreScoped:
    def test_a_cache_mount_written_in_one_scope_is_empty_in_another(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": MOUNT})
        alice = proj.build(cache_scope="user:1")
        assert read(proj.store, alice, "seen").strip() == ""
        again = proj.build(cache_scope="user:1", no_cache=True)
        assert read(proj.store, again, "seen").strip() == "wheel"
        bob = proj.build(cache_scope="user:2")
        # Not alice's layer served as a hit, and not alice's wheel in the mount.
        assert bob.step("RUN")["status"] == "built"
        assert read(proj.store, bob, "seen").strip() == ""

    def test_the_store_keeps_each_scopes_mounts_apart(self, store: Store, tmp_path: Path) -> None:
        from builds.engine.instructions.mounts import cache_path, parse

        spec = parse("type=cache,target=/pip", workdir="/", expand=lambda word: word)
        assert cache_path(store, spec, scope="user:1") != cache_path(store, spec, scope="user:2")
        assert cache_path(store, spec).parent == store.root / "mounts"


class TestStepsInsertedAndRemoved:
    def test_an_inserted_step_is_new_here(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        proj.build()
        proj.write({"Dockerfile": CLASSROOM.replace("COPY . .\n", "RUN echo hi > /hi\nCOPY . .\n")})
        built = proj.build()
        reason = built.step("RUN echo hi")["reason"]
        assert reason["code"] == "step_inserted"
        assert "new step inserted here" in reason["message"]
        assert built.step("COPY . .")["reason"]["code"] == "parent_rebuilt"

    def test_a_removed_step_rebuilds_the_step_above_because_the_step_below_changed(
        self, project: Callable[..., Project]
    ) -> None:
        proj = classroom(project)
        proj.build()
        proj.write({"Dockerfile": CLASSROOM.replace("RUN cp requirements.txt /installed\n", "")})
        built = proj.build()
        reason = built.step("COPY . .")["reason"]
        assert reason["code"] == "step_removed"
        assert "step below it changed" in reason["message"]
        assert "RUN cp requirements.txt /installed" in reason["message"]
        assert built.step("RUN cat app.py")["reason"]["code"] == "parent_rebuilt"
