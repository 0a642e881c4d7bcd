"""Time a cold build of a big-context workload inside one interpreter, the two ways the engine
gets a context: a directory it must leave alone (the command line: every file is copied into
the store once), and a directory written for the build alone (the studio's worker: its files
become the store's blobs by a hard link, no byte copied). Prints one JSON object.

    .venv/bin/python bench/context_copy.py --context CONTEXT --work DIR [--reps N]

Each repetition, for each way, starts from an empty store with the base image imported; for the
owned way the context is first copied into DIR (untimed: that is the studio's writing of a
revision's files, which happens before a build starts). Timed: the whole `build()` call, and
the `COPY . /app` step on its own, from the engine's events.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from bench.inprocess import import_base  # noqa: E402


def build_cold(store_dir: Path, context: Path, base: Path, *, owned: bool) -> dict[str, float]:
    from builds.engine.builder import BuildOptions, build
    from builds.engine.store import Store

    import_base(store_dir, base)
    subprocess.run(["sync"], check=True)
    steps: dict[str, float] = {}

    def sink(event: dict[str, Any]) -> None:
        if event.get("type") == "step.finished" and event["instruction"].startswith("COPY . "):
            steps["copy_s"] = event["duration_ms"] / 1000

    started = time.monotonic()
    result = build(Store(store_dir), BuildOptions(context=context, context_owned=owned), sink)
    if result.status != "succeeded":
        raise RuntimeError(f"build {result.status}: {result.error}")
    return {"build_s": time.monotonic() - started, **steps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="an empty directory on the store's disk")
    parser.add_argument("--base", type=Path,
                        default=PROJECT_DIR.parent / "shared/oracle/base/busybox-rootfs.tar")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    samples: dict[str, list[dict[str, float]]] = {"copied": [], "owned": []}
    for rep in range(args.reps):
        for way in ("copied", "owned") if rep % 2 == 0 else ("owned", "copied"):
            run = args.work / f"{way}-{rep}"
            context = args.context
            if way == "owned":
                context = run / "context"
                shutil.copytree(args.context, context, symlinks=True)
            samples[way].append(build_cold(run / "store", context, args.base, owned=way == "owned"))
            print(f"rep {rep + 1} {way}: {samples[way][-1]}", file=sys.stderr)
    medians = {way: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
               for way, runs in samples.items()}
    print(json.dumps({"context": str(args.context), "reps": args.reps, "medians": medians,
                      "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
