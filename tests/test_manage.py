"""manage.py: the engine's commands start without Django; the models and migrations agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Runs manage.py as `python manage.py build --help` would, then reports what got imported.
PROBE = """
import runpy, sys
sys.argv = ["manage.py", "build", "--help"]
try:
    runpy.run_path("manage.py", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print("exit", code, "django" in sys.modules)
"""


def test_the_engine_commands_do_not_start_django() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "exit 0 False", done.stderr


@pytest.mark.django_db
def test_every_model_change_has_its_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
