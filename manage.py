#!/usr/bin/env python
"""Dockerfile Studio's command line: Django's management commands, plus the layer engine's
`build`, `images` and `run`, which run without starting Django at all (a fully cached rebuild has to
cost less than Django's own start-up)."""

import os
import sys

ENGINE_COMMANDS = ("build", "images", "run")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "build":
        from builds.engine.warm.client import run as run_warm

        served = run_warm(sys.argv[1:])
        if served is not None:
            sys.exit(served)
    if len(sys.argv) > 1 and sys.argv[1] in ENGINE_COMMANDS:
        from builds.engine.cli import main as engine_main

        code = engine_main(sys.argv[1:])
        if code == 0 and sys.argv[1:3] in (["images", "import"], ["images", "pull"]):
            # A base image just came in: a build is likely next, so its engine starts now.
            from builds.engine.warm.client import start_for_next_build

            start_for_next_build()
        sys.exit(code)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        # Imported here first so that a bad environment variable is one line naming it, not a
        # traceback from deep inside whichever command touched the settings first.
        __import__(os.environ["DJANGO_SETTINGS_MODULE"])
    except ImproperlyConfigured as exc:
        sys.exit(f"Dockerfile Studio cannot start: {exc}")

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
