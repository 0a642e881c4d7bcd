"""Real builds in the sandbox on a busybox base: verdicts, reasons, layers, failures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from builds.engine.store import Store

from .conftest import BASE, Project

CLASSROOM = f"""FROM {BASE}
WORKDIR /app
COPY requirements.txt .
RUN cp requirements.txt /installed
COPY . .
RUN cat app.py > /built
CMD ["sh", "-c", "cat /built"]
"""


def classroom(project: Callable[..., Project]) -> Project:
    return project({"Dockerfile": CLASSROOM, "requirements.txt": "flask\n", "app.py": "print('hi')\n"})


class TestVerdicts:
    def test_the_first_build_builds_every_step_and_says_it_is_new(
        self, project: Callable[..., Project]
    ) -> None:
        built = classroom(project).build()
        assert built.result.status == "succeeded"
        assert [v for _, v in built.verdicts()] == ["built"] * 5
        assert built.step("WORKDIR")["reason"]["code"] == "first_build"
        copy = built.step("COPY requirements.txt")["reason"]
        assert copy["code"] == "parent_rebuilt"
        assert copy["cause_step"] == built.step("WORKDIR")["step"]
        assert built.finished["cache"] == {"hits": 0, "misses": 5}

    def test_the_same_build_twice_is_all_cached(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        proj.build()
        again = proj.build()
        assert [v for _, v in again.verdicts()] == ["cached"] * 5
        assert all(step["reason"] is None for step in again.steps)
        assert again.finished["cache"] == {"hits": 5, "misses": 0}

    def test_editing_the_app_rebuilds_only_from_the_copy_and_names_the_file(
        self, project: Callable[..., Project]
    ) -> None:
        proj = classroom(project)
        proj.build()
        proj.write({"app.py": "print('hello')\n"})
        built = proj.build()
        assert built.verdicts() == [
            ("WORKDIR /app", "cached"),
            ("COPY requirements.txt .", "cached"),
            ("RUN cp requirements.txt /installed", "cached"),
            ("COPY . .", "built"),
            ("RUN cat app.py > /built", "built"),
        ]
        copy = built.step("COPY . .")["reason"]
        assert copy["code"] == "files_changed"
        assert copy["modified"] == ["app.py"]
        assert "app.py" in copy["message"]
        run = built.step("RUN cat app.py")["reason"]
        assert run["code"] == "parent_rebuilt"
        assert run["cause_step"] == built.step("COPY . .")["step"]

    def test_a_new_file_under_copy_dot_is_named_as_added(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        proj.build()
        proj.write({"extra.py": "x = 1\n"})
        reason = proj.build().step("COPY . .")["reason"]
        assert reason["added"] == ["extra.py"] and reason["counts"]["added"] == 1

    def test_an_edited_run_gives_the_old_and_new_text(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        proj.build()
        proj.write(
            {
                "Dockerfile": CLASSROOM.replace(
                    "cp requirements.txt /installed", "cat requirements.txt > /installed"
                )
            }
        )
        reason = proj.build().step("RUN cat requirements.txt")["reason"]
        assert reason["code"] == "instruction_changed"
        assert reason["old"] == "RUN cp requirements.txt /installed"
        assert reason["new"] == "RUN cat requirements.txt > /installed"

    def test_an_env_change_rebuilds_the_runs_after_it_and_names_the_variable(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nENV MODE=dev\nRUN echo one > /one\n"})
        proj.build()
        proj.write({"Dockerfile": f"FROM {BASE}\nENV MODE=prod\nRUN echo one > /one\n"})
        reason = proj.build().step("RUN echo one")["reason"]
        assert reason["code"] == "env_changed"
        assert reason["changes"] == [{"name": "MODE", "old": "dev", "new": "prod", "arg": False}]

    def test_a_build_arg_value_is_named_when_it_changes(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nARG VERSION=1\nRUN echo $VERSION > /v\n"})
        proj.build()
        built = proj.build(build_args={"VERSION": "2"})
        reason = built.step("RUN echo")["reason"]
        assert reason["code"] == "build_arg_changed"
        assert reason["changes"][0]["name"] == "VERSION"
        assert proj.build(build_args={"VERSION": "1"}).step("RUN echo")["status"] == "cached"

    def test_no_cache_rebuilds_everything_and_says_so(self, project: Callable[..., Project]) -> None:
        proj = classroom(project)
        proj.build()
        built = proj.build(no_cache=True)
        assert {v for _, v in built.verdicts()} == {"built"}
        assert {s["reason"]["code"] for s in built.steps if s["status"] == "built"} == {"no_cache"}

    def test_a_stage_the_target_does_not_need_is_skipped(self, project: Callable[..., Project]) -> None:
        proj = project(
            {
                "Dockerfile": (
                    f"FROM {BASE} AS builder\nRUN echo app > /app\n"
                    f"FROM {BASE} AS unused\nRUN echo unused > /unused\n"
                    f"FROM {BASE}\nCOPY --from=builder /app /app\nRUN cat /app > /final\n"
                )
            }
        )
        built = proj.build()
        assert built.step("RUN echo unused")["status"] == "skipped"
        assert built.step("RUN echo unused")["reason"]["code"] == "not_needed"
        assert built.step("COPY --from=builder")["status"] == "built"

    def test_a_stages_first_step_is_new_not_an_edit_of_another_stages_step_on_the_same_base(
        self, project: Callable[..., Project]
    ) -> None:
        dockerfile = (
            f"FROM {BASE} AS builder\nWORKDIR /src\nRUN echo app > app\n"
            f"FROM {BASE}\nCOPY --from=builder /src/app /app\n"
        )
        proj = project({"Dockerfile": dockerfile})
        built = proj.build()
        assert built.step("COPY --from=builder")["reason"]["code"] == "first_build"
        proj.write({"Dockerfile": dockerfile.replace("/app\n", "/srv/app\n")})
        again = proj.build()
        assert again.step("COPY --from=builder")["reason"] == {
            "code": "instruction_changed",
            "message": "Rebuilt because the instruction changed: it was "
            "`COPY --from=builder /src/app /app`, now it is `COPY --from=builder /src/app /srv/app`.",
            "old": "COPY --from=builder /src/app /app",
            "new": "COPY --from=builder /src/app /srv/app",
        }

    def test_a_miss_is_explained_by_this_dockerfiles_own_builds_not_another_on_the_same_base(
        self, project: Callable[..., Project], tmp_path: Path
    ) -> None:
        mine = project({"Dockerfile": f"FROM {BASE}\nRUN echo one > /n\n"})
        mine.build()
        # Someone else's Dockerfile, built into the same store on the same base.
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        (theirs / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo something else > /s\n")
        Project(theirs, mine.store).build()
        mine.write({"Dockerfile": f"FROM {BASE}\nRUN echo two > /n\n"})
        reason = mine.build().step("RUN echo two")["reason"]
        assert (reason["code"], reason["old"]) == ("instruction_changed", "RUN echo one > /n")

        fresh = tmp_path / "fresh"
        fresh.mkdir()
        (fresh / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo new > /x\n")
        assert Project(fresh, mine.store).build().step("RUN echo new")["reason"]["code"] == "first_build"

    def test_copy_from_a_rebuilt_stage_stays_cached_when_the_file_is_the_same(
        self, project: Callable[..., Project]
    ) -> None:
        dockerfile = (
            f"FROM {BASE} AS builder\nRUN echo compile > /c && echo {{}} > /noise\n"
            f"FROM {BASE}\nCOPY --from=builder /c /c\n"
        )
        proj = project({"Dockerfile": dockerfile.format("a")})
        proj.build()
        proj.write({"Dockerfile": dockerfile.replace("echo {} > /noise", "echo b > /noise")})
        built = proj.build()
        assert built.step("RUN echo compile")["status"] == "built"
        assert built.step("COPY --from=builder")["status"] == "cached"


class TestLayersAndImage:
    def test_layer_facts_count_added_modified_and_deleted_files(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project(
            {
                "Dockerfile": f"FROM {BASE}\n"
                "RUN echo new > /new && echo changed >> /etc/passwd && rm /etc/group\n"
            }
        )
        layer = proj.build().step("RUN")["layer"]
        assert layer["files"] == {"added": 1, "modified": 1, "deleted": 1}
        assert layer["digest"].startswith("sha256:")

    def test_a_step_that_changes_no_files_has_no_layer(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN true\n"})
        step = proj.build().step("RUN true")
        assert step["status"] == "built" and step["layer"] is None

    def test_a_run_steps_sandbox_leftovers_go_to_the_trash_not_deleted_during_the_build(
        self, project: Callable[..., Project], store: Store
    ) -> None:
        # Deleting a directory costs this kind of disk a millisecond or more, and each RUN's
        # overlay leaves four: they are moved aside in one rename, to be deleted between builds.
        built = project({"Dockerfile": f"FROM {BASE}\nRUN echo a > /a\nRUN echo b > /b\n"}).build()
        assert built.result.status == "succeeded"
        assert [p.name for p in store.tmp.iterdir()] == ["trash"]
        left = [p.name for p in store.trash.iterdir()]
        assert len([name for name in left if name.startswith(".sandbox-work-")]) == 2
        assert store.empty_trash() >= 2 and list(store.trash.iterdir()) == []

    def test_the_image_config_carries_env_cmd_workdir_and_labels(
        self, project: Callable[..., Project], store: Store
    ) -> None:
        proj = project(
            {
                "Dockerfile": (
                    f'FROM {BASE}\nENV A=1\nWORKDIR /srv\nLABEL team=blue\nEXPOSE 8000\nCMD ["sh"]\n'
                )
            }
        )
        built = proj.build(tag="demo:1")
        image = store.get_image("demo:1")
        assert image is not None and image.digest == built.finished["image"]["digest"]
        config = image.config["config"]
        assert "A=1" in config["Env"]
        assert config["WorkingDir"] == "/srv"
        assert config["Cmd"] == ["sh"]
        assert config["Labels"] == {"team": "blue"}
        assert "8000/tcp" in config["ExposedPorts"]

    def test_run_output_streams_as_log_events_before_the_step_finishes(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo hello-out && echo hello-err >&2\n"})
        built = proj.build()
        logs = [e for e in built.events if e["type"] == "step.log"]
        text = {(e["stream"], e["text"].strip()) for e in logs}
        assert ("stdout", "hello-out") in text and ("stderr", "hello-err") in text
        finished_seq = built.step("RUN echo hello-out")["seq"]
        assert all(e["seq"] < finished_seq for e in logs)
        assert [e["seq"] for e in built.events] == list(range(1, len(built.events) + 1))


class TestFailures:
    def test_a_failing_step_is_not_cached_and_the_rest_do_not_run(
        self, project: Callable[..., Project], store: Store
    ) -> None:
        proj = project(
            {"Dockerfile": f"FROM {BASE}\nRUN echo one > /one\nRUN echo oops && exit 3\nRUN echo three\n"}
        )
        built = proj.build()
        assert built.result.status == "failed" and built.result.exit_code == 1
        failed = built.step("RUN echo oops")
        assert failed["status"] == "failed"
        assert failed["error"]["exit_code"] == 3
        assert "oops" in "\n".join(failed["error"]["tail"])
        assert built.step("RUN echo three")["status"] == "skipped"
        assert built.finished["error"]["line"] == 3
        assert not [p for p in (store.root / "tmp").iterdir() if p.name.startswith("step")]
        proj.write({"Dockerfile": f"FROM {BASE}\nRUN echo one > /one\nRUN echo fixed\nRUN echo three\n"})
        fixed = proj.build()
        assert fixed.verdicts() == [
            ("RUN echo one > /one", "cached"),
            ("RUN echo fixed", "built"),
            ("RUN echo three", "built"),
        ]

    def test_a_parse_error_names_the_line_and_changes_nothing(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo ok\nFROBNICATE now\n"})
        built = proj.build()
        assert built.result.exit_code == 2
        assert built.finished["status"] == "failed"
        assert built.finished["error"]["line"] == 3
        assert "FROBNICATE" in built.finished["error"]["message"].upper()

    def test_a_missing_copy_source_names_the_file_and_the_line(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY missing.txt /x\n"})
        built = proj.build()
        assert built.result.exit_code == 2
        error = built.finished["error"]
        assert error["line"] == 2 and "missing.txt" in error["message"]

    def test_a_source_outside_the_context_is_refused(self, project: Callable[..., Project], tmp_path) -> None:
        (tmp_path / "secret.txt").write_text("secret")
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY ../secret.txt /x\n"})
        built = proj.build()
        assert built.result.exit_code == 2
        assert built.finished["error"]["line"] == 2

    def test_a_symlink_pointing_out_of_the_context_is_refused(
        self, project: Callable[..., Project], tmp_path
    ) -> None:
        (tmp_path / "secret.txt").write_text("secret")
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY link /x\n"})
        os.symlink(tmp_path / "secret.txt", proj.root / "link")
        built = proj.build()
        assert built.result.exit_code == 2
        assert "link" in built.finished["error"]["message"]

    def test_an_unknown_base_image_is_named(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": "FROM nosuch/image:1\nRUN true\n"})
        built = proj.build()
        assert built.result.exit_code == 2
        assert "nosuch/image:1" in built.finished["error"]["message"]
        assert built.finished["error"]["line"] == 1

    def test_a_step_that_runs_forever_is_stopped_and_the_next_build_works(
        self, project: Callable[..., Project]
    ) -> None:
        from builds.engine.sandbox import Limits

        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo before > /b\nRUN sleep 1000\n"})
        built = proj.build(limits=Limits(timeout_s=1.5))
        failed = built.step("RUN sleep")
        assert failed["status"] == "failed" and failed["error"]["limit"] == "timeout"
        proj.write({"Dockerfile": f"FROM {BASE}\nRUN echo before > /b\nRUN echo done\n"})
        assert proj.build().result.status == "succeeded"

    def test_a_step_that_fills_the_disk_is_stopped_with_a_message(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN dd if=/dev/zero of=/big bs=1M count=200\n"})
        failed = proj.build().step("RUN dd")
        assert failed["status"] == "failed" and failed["error"]["limit"] == "disk"
        assert "MiB" in failed["error"]["message"] or "MB" in failed["error"]["message"]

    def test_a_fork_bomb_is_contained(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN f() {{ f | f & }}; f; sleep 5\n"})
        failed = proj.build().step("RUN f()")
        assert failed["status"] == "failed"
        assert failed["error"]["limit"] in ("pids", "timeout")


class TestHeredocs:
    def test_run_and_copy_heredocs_build_and_key_by_their_text(self, project: Callable[..., Project]) -> None:
        dockerfile = (
            f"FROM {BASE}\nCOPY <<EOF /etc/motd\nwelcome {{}}\nEOF\n"
            "RUN <<EOF\ncat /etc/motd\necho second\nEOF\n"
        )
        proj = project({"Dockerfile": dockerfile.format("one")})
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        logs = "".join(e["text"] for e in built.events if e["type"] == "step.log")
        assert "welcome one" in logs and "second" in logs
        assert [v for _, v in proj.build().verdicts()] == ["cached", "cached"]
        proj.write({"Dockerfile": dockerfile.format("two")})
        again = proj.build()
        assert again.verdicts()[0][1] == "built"
        assert "welcome two" in "".join(e["text"] for e in again.events if e["type"] == "step.log")


def test_a_pipe_whose_reader_stops_early_ends(project: Callable[..., Project]) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nRUN yes hello | head -c 20 > /twenty\n"})
    built = proj.build()
    assert built.result.status == "succeeded", built.finished
    assert built.step("RUN yes")["duration_ms"] < 10_000
