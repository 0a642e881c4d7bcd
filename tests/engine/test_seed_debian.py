"""`images seed --debian`: a minimal Debian bookworm from debootstrap, that builds can start from.

It downloads about 40 MB from a Debian mirror and takes a minute or two, so it runs only when
STUDIO_TEST_DEBOOTSTRAP=1 (make test-debian); `make test` skips it, saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builds.engine.builder import BuildOptions, build
from builds.engine.store import Store

PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.environ.get("STUDIO_TEST_DEBOOTSTRAP") != "1",
    reason="debootstrap downloads from a Debian mirror for a minute or more; "
    "STUDIO_TEST_DEBOOTSTRAP=1 (make test-debian) runs it",
)


@pytest.mark.timeout(900)
def test_seeding_debian_gives_an_image_whose_apt_runs(tmp_path: Path) -> None:
    env = {**os.environ, "STUDIO_DATA_DIR": str(tmp_path / "store")}
    seeded = subprocess.run([sys.executable, str(PROJECT / "manage.py"), "images", "seed", "--debian"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert seeded.returncode == 0, seeded.stderr
    assert "imported debian:bookworm" in seeded.stdout
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM debian:bookworm\nRUN . /etc/os-release && echo $VERSION_CODENAME && apt-get --version\n"
    )
    store = Store(tmp_path / "store")
    logs: list[str] = []
    result = build(store, BuildOptions(context=context),
                   lambda e: logs.append(e.get("text", "")) if e["type"] == "step.log" else None)
    assert result.status == "succeeded", result.error
    printed = "".join(logs)
    assert "bookworm" in printed and "apt " in printed
    again = subprocess.run([sys.executable, str(PROJECT / "manage.py"), "images", "seed", "--debian"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert "debian:bookworm is already in the store" in again.stdout
