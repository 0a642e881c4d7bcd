
"""Write the project's BuildKit scenarios, then record BuildKit's verdicts for them.

Each scenario below is an edit sequence (builds of a Dockerfile and its context) without any
verdict; this script writes it to scenarios/NNN-name.json and then runs the shared oracle's
runner with --record, which replays it against a real Docker daemon's BuildKit and writes the
verdicts it printed into the same file. Verdicts are never written by hand.

    DOCKER_HOST=unix:///tmp/d/docker.sock python tests/engine/oracle/generate.py [-k NAME]... [--no-record]

Recording prunes the daemon's whole build cache: use a private daemon
(bench/docker_daemon.sh start DIR). A scenario whose file already exists keeps its verdicts
unless it is selected with -k (or --all): then it is rewritten and recorded again.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
RUNNER = HERE.parents[2].parent / "shared" / "oracle" / "run_oracle.py"  # ../shared beside the project

BASE = "studio/busybox:1.35"
FROM = f"FROM {BASE}"


def df(*lines: str, base: str = FROM) -> str:
    """A Dockerfile: the base image's FROM, then the lines."""
    return "\n".join([base, *lines]) + "\n" if base else "\n".join(lines) + "\n"


def b(note: str, dockerfile: str, files: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """One build: the whole context is the Dockerfile plus files."""
    return {"note": note, "files": {"Dockerfile": dockerfile, **(files or {})}, **extra}


def tar_b64(members: dict[str, str]) -> dict[str, str]:
    """A small tar archive as a context file value (for ADD's extraction)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, text in sorted(members.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1577836800
            tar.addfile(info, io.BytesIO(data))
    return {"base64": base64.b64encode(buf.getvalue()).decode()}


S: list[dict[str, Any]] = []


def scenario(name: str, description: str, builds: list[dict[str, Any]], **extra: Any) -> None:
    S.append({"name": f"{101 + len(S)}-{name}", "description": description, **extra, "builds": builds})


A = {"a.txt": "a\n"}
AB = {"a.txt": "a\n", "b.txt": "b\n"}

# -- COPY and ADD flags --------------------------------------------------------------------------

scenario("copy-chown-value", "COPY --chown's value is part of the COPY step: changing the owner rebuilds it and what follows; the same owner again is cached.", [
    b("first build", df("COPY --chown=1:1 a.txt /a", "RUN ls -ln /a > /owner"), A),
    b("owner changed", df("COPY --chown=2:2 a.txt /a", "RUN ls -ln /a > /owner"), A),
    b("back to the first owner", df("COPY --chown=1:1 a.txt /a", "RUN ls -ln /a > /owner"), A),
])
scenario("copy-chown-added", "Adding --chown to a COPY rebuilds it even when the owner it names is root, the default.", [
    b("no --chown", df("COPY a.txt /a", "RUN cat /a > /b"), A),
    b("--chown=0:0", df("COPY --chown=0:0 a.txt /a", "RUN cat /a > /b"), A),
])
scenario("copy-chown-name-vs-id", "--chown=root:root and --chown=0:0 name the same owner in different words.", [
    b("ids", df("COPY --chown=0:0 a.txt /a", "RUN cat /a > /b"), A),
    b("names", df("COPY --chown=root:root a.txt /a", "RUN cat /a > /b"), A),
])
scenario("copy-chown-user-only", "--chown with a user and no group.", [
    b("user 1", df("COPY --chown=1 a.txt /a", "RUN ls -ln /a > /o"), A),
    b("user 1 and group 1", df("COPY --chown=1:1 a.txt /a", "RUN ls -ln /a > /o"), A),
])
scenario("copy-chmod-value", "COPY --chmod's mode is part of the COPY step.", [
    b("755", df("COPY --chmod=755 a.txt /a", "RUN ls -l /a > /mode"), A),
    b("700", df("COPY --chmod=700 a.txt /a", "RUN ls -l /a > /mode"), A),
    b("755 again", df("COPY --chmod=755 a.txt /a", "RUN ls -l /a > /mode"), A),
])
scenario("copy-chmod-matches-file", "Adding --chmod that equals the file's own mode still changes the step.", [
    b("no --chmod", df("COPY a.txt /a", "RUN ls -l /a > /mode"), A, modes={"a.txt": "0755"}),
    b("--chmod=755", df("COPY --chmod=755 a.txt /a", "RUN ls -l /a > /mode"), A, modes={"a.txt": "0755"}),
])
scenario("add-chown-value", "ADD --chown's value is part of the ADD step.", [
    b("owner 1", df("ADD --chown=1:1 a.txt /a", "RUN ls -ln /a > /o"), A),
    b("owner 2", df("ADD --chown=2:2 a.txt /a", "RUN ls -ln /a > /o"), A),
])
scenario("copy-from-stage-index", "COPY --from=0 names the first stage by its index; the builder's change reaches it.", [
    b("first build", df("RUN echo one > /out", "FROM studio/busybox:1.35", "COPY --from=0 /out /got", "RUN cat /got > /seen", base="FROM studio/busybox:1.35")),
    b("builder changed", df("RUN echo two > /out", "FROM studio/busybox:1.35", "COPY --from=0 /out /got", "RUN cat /got > /seen")),
    b("same again", df("RUN echo two > /out", "FROM studio/busybox:1.35", "COPY --from=0 /out /got", "RUN cat /got > /seen")),
])
scenario("copy-from-index-to-name", "Naming the stage and copying --from its name instead of its index leaves the COPY cached: the same source.", [
    b("by index", df("RUN echo one > /out", FROM, "COPY --from=0 /out /got", "RUN cat /got > /seen")),
    b("by name", df("RUN echo one > /out", FROM, "COPY --from=builder /out /got", "RUN cat /got > /seen", base=FROM + " AS builder")),
])
scenario("copy-from-stage-renamed", "Renaming a stage (and the --from naming it) changes no step.", [
    b("named build", df("RUN echo x > /out", FROM, "COPY --from=build /out /got", "RUN cat /got > /seen", base=FROM + " AS build")),
    b("renamed compile", df("RUN echo x > /out", FROM, "COPY --from=compile /out /got", "RUN cat /got > /seen", base=FROM + " AS compile")),
])
scenario("copy-from-image", "COPY --from an image by name; the same image again is cached.", [
    b("first build", df("COPY --from=studio/busybox:1.35 /etc/passwd /p", "RUN wc -l /p > /n")),
    b("again", df("COPY --from=studio/busybox:1.35 /etc/passwd /p", "RUN wc -l /p > /n")),
    b("another file of it", df("COPY --from=studio/busybox:1.35 /etc/group /p", "RUN wc -l /p > /n")),
])
scenario("copy-from-image-reimported", "COPY --from an image that was imported again under the same tag with other content rebuilds the COPY.", [
    b("first build", df("COPY --from=studio/tool:1 /etc/tool-release /t", "RUN cat /t > /seen"),
      images=[{"name": "studio/tool:1", "from": "busybox-rootfs.tar", "add": {"etc/tool-release": "tool 1\n"}}]),
    b("tag now names other content", df("COPY --from=studio/tool:1 /etc/tool-release /t", "RUN cat /t > /seen"),
      images=[{"name": "studio/tool:1", "from": "busybox-rootfs.tar", "add": {"etc/tool-release": "tool 2\n"}}]),
])
scenario("copy-from-builder-same-output", "The builder stage rebuilt with a different command, but the file the final stage copies is the same: BuildKit keys COPY --from by the copied content.", [
    b("first build", df("RUN echo same > /out", FROM, "COPY --from=b /out /got", "RUN cat /got > /seen", base=FROM + " AS b")),
    b("builder command changed, same output", df("RUN echo same > /out && echo other > /other", FROM, "COPY --from=b /out /got", "RUN cat /got > /seen", base=FROM + " AS b")),
])
scenario("copy-multiple-sources", "A COPY with several sources is keyed by all of them.", [
    b("first build", df("COPY a.txt b.txt /d/", "RUN ls /d > /l"), AB),
    b("second source changed", df("COPY a.txt b.txt /d/", "RUN ls /d > /l"), {"a.txt": "a\n", "b.txt": "b2\n"}),
    b("unchanged", df("COPY a.txt b.txt /d/", "RUN ls /d > /l"), {"a.txt": "a\n", "b.txt": "b2\n"}),
])
scenario("copy-wildcard", "COPY *.txt sees a new matching file, but not a new file that does not match.", [
    b("first build", df("COPY *.txt /d/", "RUN ls /d > /l"), AB),
    b("a .md file added", df("COPY *.txt /d/", "RUN ls /d > /l"), {**AB, "n.md": "n\n"}),
    b("a .txt file added", df("COPY *.txt /d/", "RUN ls /d > /l"), {**AB, "n.md": "n\n", "c.txt": "c\n"}),
])
scenario("copy-destination-change", "The COPY's destination is part of the step.", [
    b("to /x", df("COPY a.txt /x", "RUN ls / > /l"), A),
    b("to /y", df("COPY a.txt /y", "RUN ls / > /l"), A),
])
scenario("copy-destination-trailing-slash", "COPY a.txt /d and COPY a.txt /d/ are different steps (a file named d, or a.txt inside d).", [
    b("file /d", df("COPY a.txt /d", "RUN ls -l / > /l"), A),
    b("directory /d/", df("COPY a.txt /d/", "RUN ls -l / > /l"), A),
])
scenario("copy-json-form", "COPY in JSON form and in plain form copy the same.", [
    b("plain", df("COPY a.txt /a", "RUN cat /a > /b"), A),
    b("JSON", df('COPY ["a.txt", "/a"]', "RUN cat /a > /b"), A),
])
scenario("copy-other-file-changed", "A change to a context file the COPY does not copy leaves it cached.", [
    b("first build", df("COPY a.txt /a", "RUN cat /a > /b"), AB),
    b("b.txt changed", df("COPY a.txt /a", "RUN cat /a > /b"), {"a.txt": "a\n", "b.txt": "b2\n"}),
])
scenario("copy-directory-file-added", "Adding a file to a copied directory rebuilds the COPY; removing it again is cached.", [
    b("one file", df("COPY src /src", "RUN ls /src > /l"), {"src/one": "1\n"}),
    b("two files", df("COPY src /src", "RUN ls /src > /l"), {"src/one": "1\n", "src/two": "2\n"}),
    b("one file again", df("COPY src /src", "RUN ls /src > /l"), {"src/one": "1\n"}),
])
scenario("copy-directory-nested-rename", "Renaming a file deep in a copied directory rebuilds the COPY.", [
    b("first build", df("COPY src /src", "RUN find /src > /l"), {"src/deep/x": "x\n"}),
    b("renamed", df("COPY src /src", "RUN find /src > /l"), {"src/deep/y": "x\n"}),
])
scenario("copy-empty-file-mode", "An empty file whose mode changes: the mode is part of the checksum.", [
    b("0644", df("COPY e /e", "RUN ls -l /e > /l"), {"e": ""}),
    b("0755", df("COPY e /e", "RUN ls -l /e > /l"), {"e": ""}, modes={"e": "0755"}),
])
scenario("add-tar-extracted", "ADD of a local tar archive extracts it; the archive's content is the key.", [
    b("first archive", df("ADD files.tar /x/", "RUN cat /x/in > /seen"), {"files.tar": tar_b64({"in": "one\n"})}),
    b("archive changed", df("ADD files.tar /x/", "RUN cat /x/in > /seen"), {"files.tar": tar_b64({"in": "two\n"})}),
    b("unchanged", df("ADD files.tar /x/", "RUN cat /x/in > /seen"), {"files.tar": tar_b64({"in": "two\n"})}),
])
scenario("add-then-copy-same-file", "ADD and COPY of the same file are different steps; switching back is cached.", [
    b("COPY", df("COPY a.txt /a", "RUN cat /a > /b"), A),
    b("ADD", df("ADD a.txt /a", "RUN cat /a > /b"), A),
    b("COPY again", df("COPY a.txt /a", "RUN cat /a > /b"), A),
])
scenario("copy-dot-into-workdir", "COPY . . after WORKDIR: a new file anywhere rebuilds it.", [
    b("first build", df("WORKDIR /app", "COPY . .", "RUN ls > /l"), A),
    b("file added", df("WORKDIR /app", "COPY . .", "RUN ls > /l"), AB),
])
scenario("copy-swap-order", "Swapping two COPY steps rebuilds both; swapping back is cached.", [
    b("a then b", df("COPY a.txt /a", "COPY b.txt /b", "RUN ls / > /l"), AB),
    b("b then a", df("COPY b.txt /b", "COPY a.txt /a", "RUN ls / > /l"), AB),
    b("a then b again", df("COPY a.txt /a", "COPY b.txt /b", "RUN ls / > /l"), AB),
])
scenario("copy-missing-source", "A COPY of a file the context lacks fails; adding the file builds it.", [
    b("missing", df("COPY nothere.txt /n", "RUN cat /n > /o"), A),
    b("file added", df("COPY nothere.txt /n", "RUN cat /n > /o"), {**A, "nothere.txt": "here\n"}),
])

# -- RUN --mount and --network -------------------------------------------------------------------

scenario("run-mount-bind-context", "RUN --mount=type=bind from the context is keyed by the mounted file's content.", [
    b("first build", df("RUN --mount=type=bind,source=a.txt,target=/m cat /m > /seen"), AB),
    b("mounted file changed", df("RUN --mount=type=bind,source=a.txt,target=/m cat /m > /seen"), {"a.txt": "a2\n", "b.txt": "b\n"}),
    b("another file changed", df("RUN --mount=type=bind,source=a.txt,target=/m cat /m > /seen"), {"a.txt": "a2\n", "b.txt": "b2\n"}),
])
scenario("run-mount-bind-target", "The bind mount's target is part of the RUN.", [
    b("/m", df("RUN --mount=type=bind,source=a.txt,target=/m cat /m > /seen"), A),
    b("/n", df("RUN --mount=type=bind,source=a.txt,target=/n cat /n > /seen"), A),
])
scenario("run-mount-bind-from-stage", "A bind mount from another stage is keyed by that stage's content.", [
    b("first build", df("RUN echo one > /out", FROM, "RUN --mount=type=bind,from=b,source=/out,target=/m cat /m > /seen", base=FROM + " AS b")),
    b("stage changed", df("RUN echo two > /out", FROM, "RUN --mount=type=bind,from=b,source=/out,target=/m cat /m > /seen", base=FROM + " AS b")),
])
scenario("run-mount-cache", "A cache mount's id and target are part of the RUN; its contents are not.", [
    b("first build", df("RUN --mount=type=cache,target=/c echo x >> /c/log && cp /c/log /seen")),
    b("again", df("RUN --mount=type=cache,target=/c echo x >> /c/log && cp /c/log /seen")),
    b("id given", df("RUN --mount=type=cache,id=k,target=/c echo x >> /c/log && cp /c/log /seen")),
])
scenario("run-mount-tmpfs", "A tmpfs mount is part of the RUN; adding it rebuilds.", [
    b("no mount", df("RUN echo t > /seen")),
    b("tmpfs", df("RUN --mount=type=tmpfs,target=/t echo t > /seen")),
    b("again", df("RUN --mount=type=tmpfs,target=/t echo t > /seen")),
])
scenario("run-mount-secret-absent", "A secret mount that is not required and not given: the RUN runs, and again is cached.", [
    b("first build", df("RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen 2>&1 || echo none > /seen")),
    b("again", df("RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen 2>&1 || echo none > /seen")),
    b("other id", df("RUN --mount=type=secret,id=key cat /run/secrets/key > /seen 2>&1 || echo none > /seen")),
])
scenario("run-network-none", "RUN --network=none. Docker 20.10's frontend (Dockerfile 1.2) accepts --network only in its labs channel, so the recorded second build fails; Dockerfile 1.3 (BuildKit v0.9) made RUN --network stable, and the network mode is part of the exec operation, so a newer BuildKit rebuilds the RUN. The engine follows the newer rule (see newer_buildkit).", [
    b("plain", df("RUN echo n > /seen")),
    b("--network=none", df("RUN --network=none echo n > /seen")),
], newer_buildkit={
    "why": "RUN --network became stable in Dockerfile frontend 1.3 (BuildKit v0.9); 20.10's built-in 1.2 frontend rejects it outside labs",
    "builds": {"2": {"outcome": "succeeded", "not_run": [], "expect": [
        {"label": "[2/2] RUN --network=none echo n > /seen", "stage": 0, "stage_index": 0,
         "instruction": "RUN --network=none echo n > /seen", "line": 2, "cached": False, "status": "built"}]}},
})
scenario("run-exec-form", "RUN in exec form and the same command in shell form are different steps.", [
    b("shell form", df("RUN echo hi > /dev/null")),
    b("exec form", df('RUN ["sh", "-c", "echo hi > /dev/null"]')),
    b("exec form, other spacing", df('RUN [ "sh" , "-c" , "echo hi > /dev/null" ]')),
])
scenario("run-failed-then-fixed", "A failing RUN fixed in the next build: the steps before it stay cached.", [
    b("fails", df("RUN echo ok > /ok", "RUN exit 3", "RUN echo after > /after")),
    b("fixed", df("RUN echo ok > /ok", "RUN exit 0", "RUN echo after > /after")),
])

# -- WORKDIR ---------------------------------------------------------------------------------------

scenario("workdir-relative", "A relative WORKDIR builds on the one before; changing the first changes the second.", [
    b("/a then b", df("WORKDIR /a", "WORKDIR b", "RUN pwd > /p")),
    b("/c then b", df("WORKDIR /c", "WORKDIR b", "RUN pwd > /p")),
])
scenario("workdir-env-expansion", "WORKDIR $DIR expands the ENV; changing the ENV changes the WORKDIR.", [
    b("DIR=/one", df("ENV DIR=/one", "WORKDIR $DIR", "RUN pwd > /p")),
    b("DIR=/two", df("ENV DIR=/two", "WORKDIR $DIR", "RUN pwd > /p")),
])
scenario("workdir-trailing-slash", "WORKDIR /app and WORKDIR /app/.", [
    b("/app", df("WORKDIR /app", "RUN pwd > /p")),
    b("/app/", df("WORKDIR /app/", "RUN pwd > /p")),
])
scenario("workdir-existing-directory", "WORKDIR of a directory the image has.", [
    b("/etc", df("WORKDIR /etc", "RUN pwd > /p")),
    b("again", df("WORKDIR /etc", "RUN pwd > /p")),
    b("/tmp", df("WORKDIR /tmp", "RUN pwd > /p")),
])
scenario("workdir-twice-same", "The same WORKDIR twice.", [
    b("once", df("WORKDIR /w", "RUN pwd > /p")),
    b("twice", df("WORKDIR /w", "WORKDIR /w", "RUN pwd > /p")),
])
scenario("workdir-root-to-dir", "WORKDIR / is no step; changing it to a directory adds one.", [
    b("/", df("WORKDIR /", "RUN pwd > /p")),
    b("/w", df("WORKDIR /w", "RUN pwd > /p")),
])
scenario("workdir-before-copy", "A WORKDIR change rebuilds the relative COPY after it.", [
    b("/a", df("WORKDIR /a", "COPY a.txt .", "RUN ls > /l"), A),
    b("/b", df("WORKDIR /b", "COPY a.txt .", "RUN ls > /l"), A),
])
scenario("workdir-arg-expansion", "WORKDIR $D with D a build argument.", [
    b("default", df("ARG D=/x", "WORKDIR $D", "RUN pwd > /p")),
    b("--build-arg D=/y", df("ARG D=/x", "WORKDIR $D", "RUN pwd > /p"), build_args={"D": "/y"}),
    b("--build-arg D=/x", df("ARG D=/x", "WORKDIR $D", "RUN pwd > /p"), build_args={"D": "/x"}),
])

# -- USER and SHELL ----------------------------------------------------------------------------------

scenario("user-before-run", "A USER change rebuilds the RUNs after it.", [
    b("no USER", df("RUN id > /id1", "RUN id -u > /dev/null")),
    b("USER nobody between", df("RUN id > /id1", "USER nobody", "RUN id -u > /dev/null")),
    b("USER 65534", df("RUN id > /id1", "USER 65534", "RUN id -u > /dev/null")),
])
scenario("user-before-copy", "A USER change before a COPY (no --chown).", [
    b("no USER", df("COPY a.txt /a", "RUN cat /a > /dev/null"), A),
    b("USER nobody", df("USER nobody", "COPY a.txt /a", "RUN cat /a > /dev/null"), A),
])
scenario("user-before-workdir", "A USER change before a WORKDIR.", [
    b("no USER", df("WORKDIR /w", "RUN pwd > /dev/null")),
    b("USER nobody", df("USER nobody", "WORKDIR /w", "RUN pwd > /dev/null")),
])
scenario("shell-before-run", "A SHELL change rebuilds a shell-form RUN after it.", [
    b("default shell", df("RUN echo $0 > /s")),
    b('SHELL ["/bin/ash", "-c"]', df('SHELL ["/bin/ash", "-c"]', "RUN echo $0 > /s")),
    b('SHELL ["/bin/sh", "-c"] (the default, written out)', df('SHELL ["/bin/sh", "-c"]', "RUN echo $0 > /s")),
])
scenario("shell-before-exec-run", "A SHELL change before an exec-form RUN.", [
    b("default shell", df('RUN ["sh", "-c", "echo x > /s"]')),
    b("SHELL changed", df('SHELL ["/bin/ash", "-c"]', 'RUN ["sh", "-c", "echo x > /s"]')),
])
scenario("shell-before-copy", "A SHELL change before a COPY.", [
    b("default shell", df("COPY a.txt /a", "RUN cat /a > /b"), A),
    b("SHELL changed", df('SHELL ["/bin/ash", "-c"]', "COPY a.txt /a", "RUN cat /a > /b"), A),
])

# -- ENV ---------------------------------------------------------------------------------------------

scenario("env-forms", "ENV A=1 and the old form ENV A 1 set the same variable.", [
    b("ENV A=1", df("ENV A=1", "RUN echo $A > /a")),
    b("ENV A 1", df("ENV A 1", "RUN echo $A > /a")),
])
scenario("env-one-line-vs-two", "Two variables in one ENV or in two.", [
    b("one ENV", df("ENV A=1 B=2", "RUN echo $A$B > /ab")),
    b("two ENVs", df("ENV A=1", "ENV B=2", "RUN echo $A$B > /ab")),
])
scenario("env-quoted-value", "A quoted ENV value equal to an unquoted one.", [
    b("unquoted", df("ENV A=hello", "RUN echo $A > /a")),
    b("quoted", df('ENV A="hello"', "RUN echo $A > /a")),
])
scenario("env-before-copy", "An ENV change before a COPY that does not use it.", [
    b("A=1", df("ENV A=1", "COPY a.txt /a"), A),
    b("A=2", df("ENV A=2", "COPY a.txt /a"), A),
])
scenario("env-in-copy-destination", "COPY to $D: the ENV's value is in the destination.", [
    b("D=/x", df("ENV D=/x", "COPY a.txt $D"), A),
    b("D=/y", df("ENV D=/y", "COPY a.txt $D"), A),
])
scenario("env-order", "Two ENVs swapped, values unchanged.", [
    b("A then B", df("ENV A=1", "ENV B=2", "RUN env | sort > /e")),
    b("B then A", df("ENV B=2", "ENV A=1", "RUN env | sort > /e")),
])
scenario("env-after-run", "An ENV after the last RUN changes no step.", [
    b("A=1", df("RUN echo x > /x", "ENV A=1")),
    b("A=2", df("RUN echo x > /x", "ENV A=2")),
])
scenario("env-overrides-same-value", "Setting an ENV to the value it already has.", [
    b("once", df("ENV A=1", "RUN echo $A > /a")),
    b("twice", df("ENV A=1", "ENV A=1", "RUN echo $A > /a")),
])

# -- ARG scoping ---------------------------------------------------------------------------------------

scenario("arg-global-not-in-stage", "An ARG before FROM is not visible in the stage unless declared again: its value changes no RUN.", [
    b("V=1", "ARG V=1\n" + df("RUN echo $V > /v")),
    b("V=2", "ARG V=2\n" + df("RUN echo $V > /v")),
])
scenario("arg-global-redeclared", "An ARG before FROM declared again in the stage without a value takes the global value.", [
    b("V=1", "ARG V=1\n" + df("ARG V", "RUN echo $V > /v")),
    b("V=2", "ARG V=2\n" + df("ARG V", "RUN echo $V > /v")),
    b("--build-arg V=3", "ARG V=2\n" + df("ARG V", "RUN echo $V > /v"), build_args={"V": "3"}),
])
scenario("arg-stage-scope", "An ARG declared in one stage is not in the next stage.", [
    b("V=1", df("ARG V=1", "RUN echo $V > /v", FROM, "RUN echo $V > /w")),
    b("V=2", df("ARG V=2", "RUN echo $V > /v", FROM, "RUN echo $V > /w")),
])
scenario("arg-build-arg-two-stages", "One --build-arg declared in two stages rebuilds both stages' RUNs.", [
    b("defaults", df("ARG V", "RUN echo $V > /v", FROM, "ARG V", "RUN echo $V > /w")),
    b("--build-arg V=1", df("ARG V", "RUN echo $V > /v", FROM, "ARG V", "RUN echo $V > /w"), build_args={"V": "1"}),
])
scenario("arg-after-run", "An ARG declared after a RUN does not reach it.", [
    b("first build", df("RUN echo x > /x", "ARG V", "RUN echo $V > /v")),
    b("--build-arg V=1", df("RUN echo x > /x", "ARG V", "RUN echo $V > /v"), build_args={"V": "1"}),
])
scenario("arg-before-copy", "An ARG value change before a COPY that does not use it.", [
    b("V=1", df("ARG V=1", "COPY a.txt /a"), A),
    b("V=2", df("ARG V=2", "COPY a.txt /a"), A),
])
scenario("arg-env-same-name", "An ENV of the same name overrides the ARG in RUN.", [
    b("ARG V=1, ENV V=e", df("ARG V=1", "ENV V=e", "RUN echo $V > /v")),
    b("--build-arg V=2", df("ARG V=1", "ENV V=e", "RUN echo $V > /v"), build_args={"V": "2"}),
])
scenario("arg-in-from", "A global ARG picks the base image of the second stage.", [
    b("first build", "ARG IMG=studio/busybox:1.35\n" + df("RUN echo x > /x", base="FROM $IMG")),
    b("--build-arg names the same image", "ARG IMG=studio/busybox:1.35\n" + df("RUN echo x > /x", base="FROM $IMG"),
      build_args={"IMG": "studio/busybox:1.35"}),
])
scenario("arg-undeclared-unused", "A --build-arg that no ARG declares changes nothing.", [
    b("first build", df("RUN echo x > /x")),
    b("--build-arg X=1", df("RUN echo x > /x"), build_args={"X": "1"}),
])
scenario("arg-default-same-as-build-arg", "ARG V=1 with --build-arg V=1 against ARG V=1 alone.", [
    b("default", df("ARG V=1", "RUN echo $V > /v")),
    b("--build-arg V=1", df("ARG V=1", "RUN echo $V > /v"), build_args={"V": "1"}),
])
scenario("arg-proxy-predefined", "HTTP_PROXY is predefined: a --build-arg for it without any ARG.", [
    b("first build", df("RUN echo x > /x")),
    b("--build-arg HTTP_PROXY", df("RUN echo x > /x"), build_args={"HTTP_PROXY": "http://proxy.invalid:3128"}),
    b("another proxy", df("RUN echo x > /x"), build_args={"HTTP_PROXY": "http://other.invalid:3128"}),
])

# -- automatic platform arguments --------------------------------------------------------------------

scenario("platform-targetplatform-declared", "ARG TARGETPLATFORM declared in a stage adds its value to later RUNs.", [
    b("not declared", df("RUN echo $TARGETPLATFORM > /p")),
    b("declared", df("ARG TARGETPLATFORM", "RUN echo $TARGETPLATFORM > /p")),
    b("again", df("ARG TARGETPLATFORM", "RUN echo $TARGETPLATFORM > /p")),
])
scenario("platform-buildplatform-declared", "ARG BUILDPLATFORM declared in a stage.", [
    b("not declared", df("RUN echo $BUILDPLATFORM > /p")),
    b("declared", df("ARG BUILDPLATFORM", "RUN echo $BUILDPLATFORM > /p")),
])
scenario("platform-targetarch-and-os", "ARG TARGETOS and TARGETARCH declared one after the other.", [
    b("TARGETOS", df("ARG TARGETOS", "RUN echo $TARGETOS > /p")),
    b("TARGETOS and TARGETARCH", df("ARG TARGETOS", "ARG TARGETARCH", "RUN echo $TARGETOS > /p")),
])
scenario("platform-targetvariant", "ARG TARGETVARIANT (empty on amd64) declared.", [
    b("not declared", df("RUN echo v$TARGETVARIANT > /p")),
    b("declared", df("ARG TARGETVARIANT", "RUN echo v$TARGETVARIANT > /p")),
])
scenario("platform-global-arg", "ARG TARGETPLATFORM before FROM (global) and not redeclared.", [
    b("no ARG", df("RUN echo x > /p")),
    b("global ARG", "ARG TARGETPLATFORM\n" + df("RUN echo x > /p")),
])
scenario("platform-arg-with-default", "ARG TARGETARCH=other: the automatic value or the written default.", [
    b("declared", df("ARG TARGETARCH", "RUN echo $TARGETARCH > /p")),
    b("with a default", df("ARG TARGETARCH=other", "RUN echo $TARGETARCH > /p")),
])
scenario("platform-build-arg-override", "--build-arg TARGETARCH against the automatic value.", [
    b("declared", df("ARG TARGETARCH", "RUN echo $TARGETARCH > /p")),
    b("--build-arg TARGETARCH=arm64", df("ARG TARGETARCH", "RUN echo $TARGETARCH > /p"), build_args={"TARGETARCH": "arm64"}),
])
scenario("from-platform-flag", "FROM --platform=$BUILDPLATFORM against a plain FROM, on an amd64 builder.", [
    b("plain FROM", df("RUN echo x > /x")),
    b("--platform=$BUILDPLATFORM", df("RUN echo x > /x", base=f"FROM --platform=$BUILDPLATFORM {BASE}")),
    b("--platform=linux/amd64", df("RUN echo x > /x", base=f"FROM --platform=linux/amd64 {BASE}")),
])

# -- .dockerignore ----------------------------------------------------------------------------------

scenario("dockerignore-glob-star-star", ".dockerignore **/*.log: a changed log file anywhere does not reach COPY . .", [
    b("first build", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "**/*.log\n", "d/x.log": "1\n"}),
    b("log changed", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "**/*.log\n", "d/x.log": "2\n"}),
    b("a.txt changed", df("COPY . /c", "RUN find /c | sort > /l"), {"a.txt": "a2\n", ".dockerignore": "**/*.log\n", "d/x.log": "2\n"}),
])
scenario("dockerignore-directory", "An ignored directory: files changed in it do not reach COPY . .", [
    b("first build", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "build\n", "build/out": "1\n"}),
    b("ignored file changed", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "build\n", "build/out": "2\n"}),
])
scenario("dockerignore-edit-ignores-more", "Editing .dockerignore to ignore a file that was copied rebuilds COPY . .", [
    b("ignores nothing", df("COPY . /c", "RUN find /c | sort > /l"), {**AB, ".dockerignore": "# nothing\n"}),
    b("ignores b.txt", df("COPY . /c", "RUN find /c | sort > /l"), {**AB, ".dockerignore": "b.txt\n"}),
])
scenario("dockerignore-comment-edit", "A comment-only edit of .dockerignore: does COPY . . see the changed .dockerignore file?", [
    b("first build", df("COPY a.txt /a", "COPY . /c"), {**A, ".dockerignore": "*.log\n"}),
    b("comment added", df("COPY a.txt /a", "COPY . /c"), {**A, ".dockerignore": "# logs\n*.log\n"}),
])
scenario("dockerignore-exception-in-ignored-dir", "!d/keep re-includes one file of an ignored directory.", [
    b("first build", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "d\n!d/keep\n", "d/keep": "k\n", "d/drop": "1\n"}),
    b("dropped file changed", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "d\n!d/keep\n", "d/keep": "k\n", "d/drop": "2\n"}),
    b("kept file changed", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "d\n!d/keep\n", "d/keep": "k2\n", "d/drop": "2\n"}),
])
scenario("dockerignore-dockerfile-ignored", "The Dockerfile listed in .dockerignore: its edits do not reach COPY . .", [
    b("first build", df("COPY . /c", "RUN find /c | sort > /l"), {**A, ".dockerignore": "Dockerfile\n"}),
    b("unrelated Dockerfile edit after", df("COPY . /c", "RUN find /c | sort > /l", "LABEL x=1"), {**A, ".dockerignore": "Dockerfile\n"}),
])
scenario("dockerfile-edit-copied", "The Dockerfile itself is in the context: an edit after COPY . . rebuilds it.", [
    b("first build", df("COPY . /c", "RUN find /c | sort > /l"), A),
    b("label appended", df("COPY . /c", "RUN find /c | sort > /l", "LABEL x=1"), A),
])
scenario("dockerignore-leading-slash", ".dockerignore /b.txt and ./ forms match from the context root.", [
    b("/b.txt", df("COPY . /c", "RUN find /c | sort > /l"), {**AB, ".dockerignore": "/b.txt\n"}),
    b("b.txt changed", df("COPY . /c", "RUN find /c | sort > /l"), {"a.txt": "a\n", "b.txt": "b2\n", ".dockerignore": "/b.txt\n"}),
])
scenario("dockerignore-single-file-copy", "An ignored file named by COPY fails the build.", [
    b("not ignored", df("COPY b.txt /b"), {**AB}),
    b("ignored", df("COPY b.txt /b"), {**AB, ".dockerignore": "b.txt\n"}),
])

# -- --target, --no-cache -----------------------------------------------------------------------------

scenario("target-switch", "--target picks a stage; switching targets back and forth is cached.", [
    b("--target one", df("RUN echo 1 > /one", FROM + " AS two", "RUN echo 2 > /two", base=FROM + " AS one"), target="one"),
    b("--target two", df("RUN echo 1 > /one", FROM + " AS two", "RUN echo 2 > /two", base=FROM + " AS one"), target="two"),
    b("--target one again", df("RUN echo 1 > /one", FROM + " AS two", "RUN echo 2 > /two", base=FROM + " AS one"), target="one"),
])
scenario("target-with-dependency", "--target of a stage built FROM another stage builds both.", [
    b("--target mid", df("RUN echo 1 > /one", "FROM base AS mid", "RUN echo 2 > /two", FROM, "RUN echo 3 > /three", base=FROM + " AS base"), target="mid"),
    b("no target", df("RUN echo 1 > /one", "FROM base AS mid", "RUN echo 2 > /two", FROM, "RUN echo 3 > /three", base=FROM + " AS base")),
])
scenario("no-cache-then-cached", "--no-cache rebuilds every step; the next plain build is cached.", [
    b("first build", df("COPY a.txt /a", "RUN cat /a > /b"), A),
    b("--no-cache", df("COPY a.txt /a", "RUN cat /a > /b"), A, no_cache=True),
    b("plain again", df("COPY a.txt /a", "RUN cat /a > /b"), A),
])
scenario("no-cache-multistage", "--no-cache with a target in a multistage build.", [
    b("first build", df("RUN echo 1 > /one", FROM, "COPY --from=0 /one /one", "RUN cat /one > /seen")),
    b("--no-cache", df("RUN echo 1 > /one", FROM, "COPY --from=0 /one /one", "RUN cat /one > /seen"), no_cache=True),
])

# -- base image: content against name -----------------------------------------------------------------

ALT1 = {"name": "studio/alt:1", "from": "busybox-rootfs.tar", "add": {"etc/alt-release": "alt 1\n"}}
ALT2 = {"name": "studio/alt:1", "from": "busybox-rootfs.tar", "add": {"etc/alt-release": "alt 2\n"}}
scenario("base-reimported-other-content", "The base image imported again under the same tag with other content rebuilds every step.", [
    b("first build", df("RUN cat /etc/alt-release > /r", base="FROM studio/alt:1"), images=[ALT1]),
    b("same tag, other content", df("RUN cat /etc/alt-release > /r", base="FROM studio/alt:1"), images=[ALT2]),
])
scenario("base-reimported-same-content", "The base image imported again under the same tag from the same tarball.", [
    b("first build", df("RUN cat /etc/alt-release > /r", base="FROM studio/alt:1"), images=[ALT1]),
    b("same tag, same content", df("RUN cat /etc/alt-release > /r", base="FROM studio/alt:1"), images=[ALT1]),
])
scenario("base-same-content-other-name", "Two tags of one image: switching the FROM between them.", [
    b("first name", df("RUN echo x > /x", base="FROM studio/alt:1"), images=[ALT1, {**ALT1, "name": "studio/alt:other"}]),
    b("second name", df("RUN echo x > /x", base="FROM studio/alt:other")),
])
scenario("base-scratch-copy", "FROM scratch with a COPY: the COPY is keyed by its file alone.", [
    b("first build", df("COPY a.txt /a", base="FROM scratch"), A),
    b("changed", df("COPY a.txt /a", base="FROM scratch"), {"a.txt": "a2\n"}),
    b("back", df("COPY a.txt /a", base="FROM scratch"), A),
])

# -- metadata instructions -------------------------------------------------------------------------------

scenario("label-before-run", "A LABEL change before a RUN changes no step.", [
    b("v=1", df('LABEL v="1"', "RUN echo x > /x")),
    b("v=2", df('LABEL v="2"', "RUN echo x > /x")),
])
scenario("expose-before-run", "An EXPOSE change before a RUN.", [
    b("80", df("EXPOSE 80", "RUN echo x > /x")),
    b("8080/udp", df("EXPOSE 8080/udp", "RUN echo x > /x")),
])
scenario("volume-before-run", "VOLUME before a RUN.", [
    b("no VOLUME", df("RUN mkdir -p /data && echo x > /data/x")),
    b("VOLUME /data first", df("VOLUME /data", "RUN mkdir -p /data && echo x > /data/x")),
])
scenario("onbuild-edit", "An ONBUILD edit changes no step of the stage that declares it.", [
    b("first build", df("ONBUILD RUN echo one", "RUN echo x > /x")),
    b("ONBUILD edited", df("ONBUILD RUN echo two", "RUN echo x > /x")),
])
scenario("healthcheck-cmd-entrypoint", "HEALTHCHECK, CMD, ENTRYPOINT and STOPSIGNAL edits between RUNs.", [
    b("first build", df("RUN echo 1 > /1", "HEALTHCHECK CMD true", 'CMD ["sh"]', "RUN echo 2 > /2")),
    b("edited", df("RUN echo 1 > /1", "HEALTHCHECK --interval=5s CMD false", 'ENTRYPOINT ["sh", "-c"]', "STOPSIGNAL SIGINT", "RUN echo 2 > /2")),
    b("HEALTHCHECK NONE", df("RUN echo 1 > /1", "HEALTHCHECK NONE", "RUN echo 2 > /2")),
])
scenario("maintainer-edit", "MAINTAINER (deprecated) edits.", [
    b("first build", df("MAINTAINER a@example.invalid", "RUN echo x > /x")),
    b("edited", df("MAINTAINER b@example.invalid", "RUN echo x > /x")),
])

# -- edits of text, whitespace, order -----------------------------------------------------------------

scenario("keyword-case", "The keyword's case: run against RUN.", [
    b("RUN", df("RUN echo x > /x", "COPY a.txt /a"), A),
    b("run, copy", df("run echo x > /x", "copy a.txt /a"), A),
])
scenario("trailing-whitespace", "Spaces after a RUN's command and before the keyword.", [
    b("plain", df("RUN echo x > /x")),
    b("trailing spaces", df("RUN echo x > /x   ")),
    b("indented", df("   RUN echo x > /x")),
])
scenario("space-after-keyword", "Two spaces between the keyword and the command.", [
    b("one space", df("RUN echo x > /x")),
    b("two spaces", df("RUN  echo x > /x")),
])
scenario("continuation-split", "A RUN split over two lines with a backslash against the same words on one line.", [
    b("one line", df("RUN echo a && echo b > /ab")),
    b("split", df("RUN echo a && \\", "    echo b > /ab")),
    b("split differently", df("RUN echo a \\", "&& echo b > /ab")),
])
scenario("continuation-comment", "A comment line inside a continued RUN.", [
    b("no comment", df("RUN echo a && \\", "    echo b > /ab")),
    b("comment inside", df("RUN echo a && \\", "# why", "    echo b > /ab")),
])
scenario("escape-directive", "The escape directive changes how a line continues, not the joined command.", [
    b("backslash", df("RUN echo a && \\", "    echo b > /ab")),
    b("backtick", "# escape=`\n" + df("RUN echo a && `", "    echo b > /ab")),
])
scenario("copy-flag-order", "COPY --chown and --chmod written in the other order.", [
    b("--chown first", df("COPY --chown=1:1 --chmod=600 a.txt /a", "RUN ls -ln /a > /l"), A),
    b("--chmod first", df("COPY --chmod=600 --chown=1:1 a.txt /a", "RUN ls -ln /a > /l"), A),
])
scenario("run-mount-option-order", "A mount's options written in another order.", [
    b("target last", df("RUN --mount=type=bind,source=a.txt,target=/m cat /m > /seen"), A),
    b("target first", df("RUN --mount=target=/m,type=bind,source=a.txt cat /m > /seen"), A),
])
scenario("stage-name-case", "A stage named in another case: AS Build and --from=build.", [
    b("AS build", df("RUN echo x > /x", FROM, "COPY --from=build /x /x", base=FROM + " AS build")),
    b("AS Build", df("RUN echo x > /x", FROM, "COPY --from=build /x /x", base=FROM + " AS Build")),
])
scenario("run-value-edit-then-revert", "A value inside a RUN edited and reverted after a COPY.", [
    b("v1", df("COPY a.txt /a", "RUN echo 1 > /v", "RUN cat /v > /w"), A),
    b("v2", df("COPY a.txt /a", "RUN echo 2 > /v", "RUN cat /v > /w"), A),
    b("v1 again", df("COPY a.txt /a", "RUN echo 1 > /v", "RUN cat /v > /w"), A),
])
scenario("env-substitution-in-run-text", "RUN echo ${A} and RUN echo $A are different texts with one meaning.", [
    b("$A", df("ENV A=1", "RUN echo $A > /a")),
    b("${A}", df("ENV A=1", "RUN echo ${A} > /a")),
])
scenario("identical-steps-two-stages", "Two stages with identical steps.", [
    b("first build", df("RUN echo same > /s", FROM, "RUN echo same > /s", "COPY --from=0 /s /t")),
    b("second stage's step changed", df("RUN echo same > /s", FROM, "RUN echo other > /s", "COPY --from=0 /s /t")),
])

# -- --chown and a WORKDIR's owner: the text BuildKit's LLB reads as an id -------------------------

APP_USER = "RUN echo 'app:x:1000:1000::/:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group"

scenario("copy-chown-root-without-group", "--chown=root and --chown=0 are one owner without a group; adding the group is another step.", [
    b("id", df("COPY --chown=0 a.txt /a", "RUN ls -ln /a > /o"), A),
    b("root by name", df("COPY --chown=root a.txt /a", "RUN ls -ln /a > /o"), A),
    b("with a group", df("COPY --chown=root:0 a.txt /a", "RUN ls -ln /a > /o"), A),
])
scenario("copy-chown-group-root", "The group root is the group 0.", [
    b("ids", df("COPY --chown=1:0 a.txt /a", "RUN ls -ln /a > /o"), A),
    b("group by name", df("COPY --chown=1:root a.txt /a", "RUN ls -ln /a > /o"), A),
])
scenario("copy-chown-id-spelling", "An id written with leading zeros or a plus sign is the same number.", [
    b("plain", df("COPY --chown=1:1 a.txt /a", "RUN ls -ln /a > /o"), A),
    b("leading zeros", df("COPY --chown=01:001 a.txt /a", "RUN ls -ln /a > /o"), A),
    b("plus signs", df("COPY --chown=+1:+1 a.txt /a", "RUN ls -ln /a > /o"), A),
])
scenario("copy-chown-other-name-vs-id", "A name other than root stays a name in the key, even where it names the same ids.", [
    b("ids", df(APP_USER, "COPY --chown=1000:1000 a.txt /a", "RUN ls -ln /a > /o"), A),
    b("names", df(APP_USER, "COPY --chown=app:app a.txt /a", "RUN ls -ln /a > /o"), A),
])
scenario("add-chown-name-vs-id", "ADD --chown=root:root after ADD --chown=0:0.", [
    b("ids", df("ADD --chown=0:0 a.txt /a", "RUN cat /a > /b"), A),
    b("names", df("ADD --chown=root:root a.txt /a", "RUN cat /a > /b"), A),
])
scenario("workdir-user-root-vs-0", "WORKDIR makes its directory as the USER: USER root and USER 0 make it alike.", [
    b("USER 0", df("USER 0", "WORKDIR /w", "RUN pwd > /p")),
    b("USER root", df("USER root", "WORKDIR /w", "RUN pwd > /p")),
])


def write(selected: list[str], rewrite_all: bool) -> list[str]:
    """Write the selected scenarios' files (and any missing one); return their file names."""
    SCENARIOS.mkdir(parents=True, exist_ok=True)
    written = []
    for scn in S:
        path = SCENARIOS / f"{scn['name']}.json"
        chosen = rewrite_all or any(k in scn["name"] for k in selected)
        if path.exists() and not chosen:
            continue
        path.write_text(json.dumps(scn, indent=2) + "\n")
        written.append(path.name)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", default=[], help="(re)write and record scenarios whose name contains this")
    ap.add_argument("--all", action="store_true", help="rewrite and record every scenario")
    ap.add_argument("--no-record", action="store_true", help="write the files only")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    written = write(args.k, args.all)
    print(f"{len(S)} scenarios; written: {len(written)}")
    if args.no_record or not written:
        return 0
    argv = [sys.executable, str(RUNNER), "--record", "--scenarios", str(SCENARIOS), "--repeat", str(args.repeat)]
    for name in written:
        argv += ["-k", name]
    return subprocess.call(argv)


if __name__ == "__main__":
    sys.exit(main())
