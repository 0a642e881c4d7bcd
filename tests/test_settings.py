"""Settings come from the environment; a value that cannot be used stops start-up, naming it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from studio.settings import envbool, envint, envlist, load_or_create_secret

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("off", False), ("0", False), ("", False)],
)
def test_envbool_reads_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("DEBUG", value)
    assert envbool("DEBUG", False) is expected


def test_envbool_refuses_anything_else_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe'"):
        envbool("DEBUG", False)


def test_envint_refuses_words_and_numbers_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(ImproperlyConfigured, match="PORT='eighty' is not a whole number"):
        envint("PORT", 8000)
    monkeypatch.setenv("PORT", "70000")
    with pytest.raises(ImproperlyConfigured, match="PORT=70000 is out of range"):
        envint("PORT", 8000, minimum=1, maximum=65535)
    monkeypatch.setenv("PORT", "8080")
    assert envint("PORT", 8000, minimum=1, maximum=65535) == 8080


def test_envlist_splits_on_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", " studio.example, localhost ,")
    assert envlist("ALLOWED_HOSTS", []) == ["studio.example", "localhost"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "perhaps", "DEBUG='perhaps' is not a yes/no value"),
        ("DATABASE_URL", "mongo://db/studio", "DATABASE_URL='mongo://db/studio' cannot be used"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL='http://127.0.0.1:6379' must start with"),
        ("STUDIO_REDIS_PORT", "99999", "STUDIO_REDIS_PORT=99999 is out of range"),
    ],
)
def test_a_bad_value_stops_start_up_with_one_line_naming_it(
    variable: str, value: str, message: str, tmp_path: Path
) -> None:
    env = {**os.environ, "STUDIO_VAR_DIR": str(tmp_path), variable: value}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_the_secret_key_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    first = load_or_create_secret(path)
    assert len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert load_or_create_secret(tmp_path / "other") != first


def test_web_builds_get_the_input_limits_from_the_environment(tmp_path: Path) -> None:
    """The studio reads STUDIO_BUILD_* with the engine's own reader, the one `manage.py build`
    uses, so a web build and a command-line build are bounded alike."""
    env = {**os.environ, "STUDIO_VAR_DIR": str(tmp_path), "STUDIO_BUILD_DOCKERFILE_KB": "64",
           "STUDIO_BUILD_STEPS": "40", "STUDIO_BUILD_DISK_MB": "100",
           "DJANGO_SETTINGS_MODULE": "studio.settings"}
    code = ("import django; django.setup(); from builds.tasks import sandbox_limits; l = sandbox_limits(); "
            "print(l.dockerfile_bytes, l.steps, l.disk_bytes)")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == [str(64 << 10), "40", str(100 << 20)], done.stderr[-2000:]
