"""Time fully cached rebuilds inside one interpreter: the engine's own cost, without Python's
start-up or the command line. Run with the project's interpreter; prints one JSON object.

    .venv/bin/python bench/inprocess.py --context CONTEXT --store EMPTY_DIR --base TARBALL [--loops N]

The result has `skipped` (and a reason) instead of timings when the engine cannot be imported
or its first build fails, so the harness can go on without it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
BASE_IMAGE = "studio/busybox:1.35"

BuildOnce = Callable[[], int]  # runs one build, returns how many steps were not cached


def engine_build_function(store_dir: Path, context: Path, dockerfile: Path) -> BuildOnce:
    """The one place that knows the engine's entry point and its signature. Importing happens
    here, so an engine that cannot be imported yet raises ImportError to the caller."""
    from builds.engine.builder import BuildOptions, build
    from builds.engine.store import Store

    def build_once() -> int:
        rebuilt = 0

        def sink(event: dict[str, Any]) -> None:
            nonlocal rebuilt
            if event.get("type") == "step.finished" and event.get("status") not in ("cached", "skipped"):
                rebuilt += 1

        result = build(Store(store_dir), BuildOptions(context=context, dockerfile=dockerfile), sink)
        if result.status != "succeeded":
            raise RuntimeError(f"build {result.status}: {result.error}")
        return rebuilt

    return build_once


def import_base(store_dir: Path, tarball: Path) -> None:
    """Through the command line, the contract for imports."""
    env = {**os.environ, "STUDIO_DATA_DIR": str(store_dir)}
    subprocess.run(
        [sys.executable, "manage.py", "images", "import", str(tarball), BASE_IMAGE],
        cwd=PROJECT_DIR, env=env, check=True, capture_output=True, text=True,
    )


def timed(build_once: BuildOnce) -> tuple[float, int]:
    start = time.perf_counter()
    rebuilt = build_once()
    return time.perf_counter() - start, rebuilt


def measure(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(PROJECT_DIR))
    try:
        build_once = engine_build_function(args.store, args.context, args.context / args.dockerfile)
    except Exception as exc:  # any import-time failure means: not measurable yet
        return {"skipped": f"cannot import the engine's builder.build: {type(exc).__name__}: {exc}"}
    try:
        import_base(args.store, args.base)
        cold, _ = timed(build_once)
        warmup, _ = timed(build_once)
    except subprocess.CalledProcessError as exc:
        return {"skipped": f"importing the base image failed: {(exc.stderr or '').strip()[-500:]}"}
    except Exception as exc:
        return {"skipped": f"the engine's first builds failed: {type(exc).__name__}: {exc}"}
    samples: list[float] = []
    rebuilt_total = 0
    for _ in range(args.loops):
        seconds, rebuilt = timed(build_once)
        samples.append(seconds)
        rebuilt_total += rebuilt
    return {
        "loops": args.loops,
        "cold_seconds": cold,
        "warmup_seconds": warmup,
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
        "rebuilt_steps_in_loops": rebuilt_total,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--context", type=Path, required=True)
    parser.add_argument("--dockerfile", default="Dockerfile", help="relative to the context")
    parser.add_argument("--store", type=Path, required=True, help="an empty directory for a fresh store")
    parser.add_argument("--base", type=Path, required=True, help="the base image's rootfs tarball")
    parser.add_argument("--loops", type=int, default=20)
    args = parser.parse_args(argv)
    args.context = args.context.resolve()
    print(json.dumps(measure(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
