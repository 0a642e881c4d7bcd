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
        ("STUDIO_CACHE_INDEX", "http://redis:6379", "STUDIO_CACHE_INDEX='http://redis:6379' must start with"),
        ("STUDIO_CACHE_INDEX", "redis://redis:6379/1",
         "STUDIO_CACHE_INDEX and STUDIO_CACHE_REGISTRY go together"),
        ("STUDIO_STORE_MAX_BYTES", "-1", "STUDIO_STORE_MAX_BYTES=-1"),
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


HTTPS_PROBE = """
import django, json
django.setup()
from django.test import Client
reply = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
cookie = reply.cookies["csrftoken"]
print(json.dumps({"hsts": reply.get("Strict-Transport-Security"), "secure": bool(cookie["secure"])}))
"""


@pytest.mark.parametrize("behind_https", [True, False])
def test_behind_an_https_proxy_cookies_are_secure_and_browsers_told_to_keep_to_https(
    tmp_path: Path, behind_https: bool
) -> None:
    import json

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "STUDIO_VAR_DIR": str(tmp_path),
        "ALLOWED_HOSTS": "testserver",
    }
    if behind_https:
        env |= {
            "STUDIO_SECURE_COOKIES": "true",
            "STUDIO_HSTS_SECONDS": "3600",
            "STUDIO_HSTS_INCLUDE_SUBDOMAINS": "yes",
            "STUDIO_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        }
    probe = subprocess.run(
        [sys.executable, "-c", HTTPS_PROBE], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    if behind_https:
        assert found == {"hsts": "max-age=3600; includeSubDomains", "secure": True}
    else:  # `make run`'s plain HTTP on loopback: neither, or the studio could not be used there
        assert found == {"hsts": None, "secure": False}
