"""The studio's cache-order hints: each one where the order costs a rebuild, and none where it does not."""

from __future__ import annotations

from builds.engine.dockerfile import parse
from builds.engine.hints import Hint, hints


def found(text: str, code: str) -> list[Hint]:
    return [hint for hint in hints(parse(text)) if hint.code == code]


class TestCopyAllBeforeInstall:
    CODE = "studio/copy-all-before-install"

    def test_copying_everything_before_pip_install_is_named_with_both_lines(self) -> None:
        (hint,) = found(
            "FROM python:3.12\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\nCMD x\n",
            self.CODE,
        )
        assert (hint.line, hint.end_line) == (3, 3)
        assert "line 4" in hint.message and "COPY requirements.txt ./" in hint.message

    def test_npm_after_add_of_the_context_suggests_its_own_lists(self) -> None:
        (hint,) = found("FROM node:20\nADD ./ /srv/\nRUN npm ci\n", self.CODE)
        assert "COPY package.json package-lock.json ./" in hint.message

    def test_a_continued_copy_is_named_by_its_lines(self) -> None:
        (hint,) = found("FROM golang:1\nCOPY go.mod \\\n  . /src/\nRUN go mod download\n", self.CODE)
        assert (hint.line, hint.end_line) == (2, 3)

    def test_system_packages_after_the_copy_are_told_to_move_up(self) -> None:
        (hint,) = found("FROM debian:12\nCOPY . /app\nRUN apt-get install -y curl\n", self.CODE)
        assert "move the install above line 2" in hint.message

    def test_copying_the_list_first_and_the_rest_after_is_fine(self) -> None:
        text = "FROM python:3.12\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"
        assert found(text, self.CODE) == []

    def test_copy_from_another_stage_is_not_the_context(self) -> None:
        text = "FROM a AS build\nRUN make\nFROM python:3.12\nCOPY --from=build . .\nRUN pip install x\n"
        assert found(text, self.CODE) == []

    def test_a_script_reading_the_requirements_after_the_copy_is_an_install_too(self) -> None:
        text = "FROM busybox\nCOPY . .\nRUN sed -e 's/#.*//' requirements.txt | while read -r p; do :; done\n"
        (hint,) = found(text, self.CODE)
        assert hint.line == 2 and "line 3 installs" in hint.message
        assert "COPY requirements.txt ./" in hint.message
        fixed = "FROM busybox\nCOPY requirements.txt .\nRUN xargs echo < requirements.txt\nCOPY . .\n"
        assert found(fixed, self.CODE) == []

    def test_a_run_that_installs_nothing_is_fine(self) -> None:
        assert found("FROM python:3.12\nCOPY . .\nRUN python -m compileall .\n", self.CODE) == []


class TestEarlyArg:
    CODE = "studio/early-arg"

    def test_an_arg_above_runs_that_do_not_use_it_points_to_its_first_use(self) -> None:
        text = "FROM alpine:3\nARG VERSION=1\nRUN apk add curl\nRUN echo setup\nRUN echo $VERSION > /v\n"
        (hint,) = found(text, self.CODE)
        assert hint.line == 2
        assert "lines 3 and 4" in hint.message and "just before line 5" in hint.message

    def test_an_unused_arg_above_a_run_is_named(self) -> None:
        (hint,) = found("FROM alpine:3\nARG COLOUR\nRUN echo hi\n", self.CODE)
        assert "remove it" in hint.message and "COLOUR" in hint.message

    def test_braced_and_defaulted_uses_count(self) -> None:
        text = "FROM alpine:3\nARG V\nRUN echo ${V:-none}\nRUN echo two\n"
        assert found(text, self.CODE) == []

    def test_an_arg_just_before_its_use_is_fine(self) -> None:
        text = "FROM alpine:3\nRUN apk add curl\nARG VERSION=1\nRUN echo $VERSION\n"
        assert found(text, self.CODE) == []

    def test_an_arg_before_the_first_from_reaches_no_run(self) -> None:
        assert found("ARG BASE=alpine:3\nFROM $BASE\nRUN echo hi\n", self.CODE) == []

    def test_a_longer_name_is_not_a_use(self) -> None:
        (hint,) = found("FROM alpine:3\nARG V\nRUN echo $VERSION\n", self.CODE)
        assert hint.line == 2


class TestCleanupInOwnRun:
    CODE = "studio/cleanup-in-own-run"

    def test_deleting_apt_lists_in_a_later_run_saves_nothing(self) -> None:
        text = (
            "FROM debian:12\nRUN apt-get update && apt-get install -y curl\nRUN rm -rf /var/lib/apt/lists/*\n"
        )
        (hint,) = found(text, self.CODE)
        assert hint.line == 3 and "layer of line 2" in hint.message

    def test_apt_get_clean_alone_is_named(self) -> None:
        (hint,) = found("FROM debian:12\nRUN apt-get install -y curl\nRUN apt-get clean\n", self.CODE)
        assert hint.line == 3

    def test_cleaning_in_the_installing_run_is_fine(self) -> None:
        text = (
            "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
        )
        assert found(text, self.CODE) == []

    def test_a_run_that_also_does_real_work_is_fine(self) -> None:
        text = "FROM debian:12\nRUN make && rm -rf /root/.cache\n"
        assert found(text, self.CODE) == []


class TestAptUpdateAlone:
    CODE = "studio/apt-update-alone"

    def test_an_update_in_its_own_run_is_named(self) -> None:
        (hint,) = found("FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\n", self.CODE)
        assert hint.line == 2 and "apt-get update && apt-get install" in hint.message

    def test_apk_update_alone_is_named(self) -> None:
        assert len(found("FROM alpine:3\nRUN apk update\nRUN apk add curl\n", self.CODE)) == 1

    def test_update_and_install_together_are_fine(self) -> None:
        text = "FROM debian:12\nRUN apt-get update \\\n && apt-get install -y curl\n"
        assert found(text, self.CODE) == []


def test_a_well_ordered_dockerfile_has_no_hints() -> None:
    text = (
        "FROM python:3.12\nRUN apt-get update && apt-get install -y gcc && rm -rf /var/lib/apt/lists/*\n"
        "WORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
        "COPY . .\nARG BUILD_ID\nRUN echo $BUILD_ID > /build-id\nCMD python app.py\n"
    )
    assert hints(parse(text)) == []
