"""Puts in what a fresh studio needs to be useful, and is safe to run on every start."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Seed the studio: the base image builds start from (when the engine offers one)."

    def handle(self, *args: Any, **options: Any) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        env = {**os.environ, "STUDIO_DATA_DIR": str(settings.STUDIO_DATA_DIR)}
        # The engine's command line decides what a base image is; while it has no `images seed`
        # there is nothing to import, and that is not an error.
        probe = [*manage, "images", "seed", "--help"]
        if subprocess.run(probe, env=env, capture_output=True, check=False).returncode != 0:
            self.stdout.write("seed: the engine has no `images seed` yet; no base image imported")
            return
        done = subprocess.run([*manage, "images", "seed"], env=env, check=False)
        if done.returncode != 0:
            raise CommandError(f"`manage.py images seed` failed with exit code {done.returncode}")
