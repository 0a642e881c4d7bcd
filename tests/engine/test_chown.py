"""COPY --chown and a WORKDIR made under USER: the owner the files get, the key the step gets
(`root` and decimal numbers are ids, as BuildKit's LLB reads them), and clear refusals of owners
no image can have."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

import pytest

from builds.engine.instructions.fs import owner_key

from .conftest import BASE, Built, Project

APP_USER = "RUN echo 'app:x:1000:1000::/:/bin/sh' >> /etc/passwd && echo 'app:x:1001:' >> /etc/group"


def owners(built: Built, proj: Project, instruction: str) -> dict[str, tuple[int, int]]:
    out = io.BytesIO()
    proj.store.write_layer_tar(built.step(instruction)["layer"]["digest"][7:23], out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name: (m.uid, m.gid) for m in tar.getmembers() if m.isfile()}


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("root:root", "0:0"),
        ("root", "0"),
        ("0:root", "0:0"),
        ("01:+1", "1:1"),
        ("app", "app"),
        ("app:0", "app:0"),
        ("2147483648", "2147483648"),  # beyond 32 bits: a name, as BuildKit reads it
        ("\u0663", "\u0663"),  # an Arabic-Indic three is a digit to Python, not to BuildKit
        ("1:2:3", "1:2:3"),
    ],
)
def test_the_key_holds_ids_where_the_text_names_them(spec: str, key: str) -> None:
    assert owner_key(spec) == key


def test_root_by_name_is_served_from_the_cache_of_root_by_id_and_owns_the_files(
    project: Callable[..., Project],
) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY --chown=0:0 a.txt /a\n", "a.txt": "a\n"})
    first = proj.build()
    proj.write({"Dockerfile": f"FROM {BASE}\nCOPY --chown=root:root a.txt /a\n"})
    second = proj.build()
    assert second.verdicts() == [("COPY --chown=root:root a.txt /a", "cached")]
    assert owners(first, proj, "COPY") == {"a": (0, 0)}


def test_ids_spelt_with_zeros_and_signs_own_the_files_as_numbers(project: Callable[..., Project]) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY --chown=+7:007 a.txt /a\n", "a.txt": "a\n"})
    built = proj.build()
    assert built.finished["status"] == "succeeded"
    assert owners(built, proj, "COPY") == {"a": (7, 7)}


def test_another_name_is_looked_up_in_the_image_and_keyed_apart_from_its_ids(
    project: Callable[..., Project],
) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\n{APP_USER}\nCOPY --chown=app a.txt /a\n", "a.txt": "a\n"})
    built = proj.build()
    assert owners(built, proj, "COPY") == {"a": (1000, 1000)}
    proj.write({"Dockerfile": f"FROM {BASE}\n{APP_USER}\nCOPY --chown=1000:1000 a.txt /a\n"})
    assert proj.build().step("COPY")["status"] == "built"


@pytest.mark.parametrize(
    ("chown", "message"),
    [
        # BuildKit reads a flag's bytes one by one (its extractBuilderFlags), so a non-ASCII
        # name is looked up as those bytes' Latin-1 letters, as it is here; the message says so.
        ("jos\u00e9", "unknown user 'jos\u00c3\u00a9'"),
        ("99999999999", "unknown user '99999999999'"),
        ("-1", "a negative id names no owner"),
        ("0:-5", "a negative id names no owner"),
        ("root:staff", "unknown group 'staff'"),
    ],
)
def test_an_owner_no_image_can_have_fails_the_step_naming_it(
    project: Callable[..., Project], chown: str, message: str
) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY --chown={chown} a.txt /a\n", "a.txt": "a\n"})
    built = proj.build()
    assert built.finished["status"] == "failed"
    error = built.finished["error"]
    assert error["line"] == 2
    assert message in error["message"]


def test_workdir_under_user_root_is_served_from_the_cache_of_user_0(project: Callable[..., Project]) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nUSER 0\nWORKDIR /w\n"})
    proj.build()
    proj.write({"Dockerfile": f"FROM {BASE}\nUSER root\nWORKDIR /w\n"})
    assert proj.build().verdicts() == [("WORKDIR /w", "cached")]


def test_a_name_buildkit_reads_byte_by_byte_is_named_as_written_too(project: Callable[..., Project]) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY --chown=jos\u00e9:1 a.txt /a\n", "a.txt": "a\n"})
    message = proj.build().finished["error"]["message"]
    assert message.endswith(
        "(BuildKit reads a flag's non-ASCII letters byte by byte: 'jos\u00e9:1' became 'jos\u00c3\u00a9:1')"
    )

