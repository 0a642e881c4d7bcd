"""COPY --exclude, COPY --parents, variables in COPY heredocs, and `<Dockerfile>.dockerignore`,
in real builds, checked by what lands in the layer and what the cache does."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

from builds.engine.store import Store

from .conftest import BASE, Built, Project


def layer_files(store: Store, built: Built, instruction: str) -> dict[str, bytes]:
    layer = built.step(instruction)["layer"]
    out = io.BytesIO()
    store.write_layer_tar(layer["digest"][7:23], out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name.rstrip("/"): (tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


class TestExclude:
    def test_excluded_files_are_left_out_and_do_not_touch_the_key(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({
            "Dockerfile": f"FROM {BASE}\nCOPY --exclude=*.md --exclude=docs . /app/\n",
            "main.py": "print()\n", "README.md": "read me\n", "docs/guide.txt": "guide\n",
            "src/notes.md": "notes\n", "src/lib.py": "lib\n",
        })
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        files = layer_files(proj.store, built, "COPY")
        assert {"app/main.py", "app/src/lib.py", "app/Dockerfile"} <= set(files)
        assert "app/README.md" not in files and "app/docs" not in files
        # `*.md` is matched from the root of what is copied, as in .dockerignore.
        assert "app/src/notes.md" in files
        proj.write({"README.md": "changed\n", "docs/guide.txt": "changed\n"})
        assert proj.build().step("COPY")["status"] == "cached"
        proj.write({"main.py": "print(1)\n"})
        rebuilt = proj.build().step("COPY")
        assert rebuilt["status"] == "built" and rebuilt["reason"]["modified"] == ["main.py"]

    def test_a_wildcard_source_whose_name_is_excluded_is_skipped_and_exceptions_bring_files_back(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({
            "Dockerfile": f"FROM {BASE}\nCOPY --exclude=*.txt --exclude=!keep.txt hom* /d/\n",
            "home.txt": "no\n", "homer.py": "yes\n", "homes/keep.txt": "kept\n", "homes/drop.txt": "x\n",
        })
        files = layer_files(proj.store, proj.build(), "COPY")
        assert "d/home.txt" not in files and "d/homer.py" in files
        assert "d/keep.txt" in files and "d/drop.txt" not in files

    def test_adding_an_exclude_changes_the_key(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nCOPY . /app/\n", "a.log": "x\n"})
        proj.build()
        proj.write({"Dockerfile": f"FROM {BASE}\nCOPY --exclude=*.log . /app/\n"})
        assert proj.build().step("COPY")["status"] == "built"


    def test_excludes_apply_to_files_from_an_earlier_stage_source_by_source(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": (
            f"FROM {BASE} AS build\nRUN mkdir -p /out/a /out/b && echo 1 > /out/a/x.o && echo 2 > /out/a/x.c"
            " && echo 3 > /out/b/y.o\n"
            f"FROM {BASE}\nCOPY --from=build --exclude=*.o /out/a /out/b /dist/\n"
        )})
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        files = layer_files(proj.store, built, "COPY --from")
        assert {name for name in files if not name.endswith("dist")} == {"dist/x.c"}


class TestParents:
    def test_sources_keep_their_directories_under_the_destination(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({
            "Dockerfile": f"FROM {BASE}\nCOPY --parents ./x/a.txt ./y/a.txt /out/\n"
                          "COPY --parents ./deep/./keep/*.txt /pivot/\n",
            "x/a.txt": "x\n", "y/a.txt": "y\n", "deep/keep/b.txt": "b\n", "deep/keep/c.md": "c\n",
        })
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        files = layer_files(proj.store, built, "COPY --parents ./x")
        assert files["out/x/a.txt"] == b"x\n" and files["out/y/a.txt"] == b"y\n"
        pivot = layer_files(proj.store, built, "COPY --parents ./deep")
        assert pivot["pivot/keep/b.txt"] == b"b\n"
        assert "pivot/keep/c.md" not in pivot and "pivot/deep" not in pivot


class TestHeredocExpansion:
    def test_an_unquoted_heredoc_expands_variables_and_keeps_quotes(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": (
            f"FROM {BASE}\nARG NAME=world\nENV GREETING=hello\n"
            "COPY <<EOF /greeting\n$GREETING \"${NAME}\" '$NAME' \\$NAME\nEOF\n"
            "COPY <<'EOF' /raw\n$GREETING ${NAME}\nEOF\n"
        )})
        built = proj.build()
        assert layer_files(proj.store, built, "COPY <<EOF")["greeting"] == b"hello \"world\" '$NAME' $NAME\n"
        assert layer_files(proj.store, built, "COPY <<'EOF'")["raw"] == b"$GREETING ${NAME}\n"

    def test_a_changed_build_arg_rebuilds_an_expanding_heredoc_only(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": (
            f"FROM {BASE}\nARG NAME=world\nCOPY <<EOF /a\n$NAME\nEOF\nCOPY <<'EOF' /b\n$NAME\nEOF\n"
        )})
        proj.build()
        again = proj.build(build_args={"NAME": "class"})
        assert again.step("COPY <<EOF")["status"] == "built"
        assert layer_files(proj.store, again, "COPY <<EOF")["a"] == b"class\n"


class TestDockerfileIgnoreFile:
    def test_the_ignore_file_beside_the_dockerfile_wins(self, project: Callable[..., Project]) -> None:
        proj = project({
            "app.Dockerfile": f"FROM {BASE}\nCOPY . /app/\n",
            "app.Dockerfile.dockerignore": "secret.txt\n",
            ".dockerignore": "public.txt\n",
            "secret.txt": "s\n", "public.txt": "p\n",
        })
        built = proj.build(dockerfile=proj.root / "app.Dockerfile")
        files = layer_files(proj.store, built, "COPY")
        assert "app/secret.txt" not in files
        assert "app/public.txt" in files
