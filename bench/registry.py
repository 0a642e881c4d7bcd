"""Pull and push of a multi-layer image on loopback: the studio's store against Debian's
docker-registry, timed, with the bytes moved.

    .venv/bin/python bench/registry.py [--layers 6] [--layer-mb 16] [--reps 3]

Builds a busybox image with LAYERS RUN steps, each writing LAYER_MB of random data (so gzip
cannot shrink it: the gzip row is its worst case), then times: a push to an empty registry,
the same image pushed to a second repository (every layer mounted), a gzip push to another
registry, a pull into an empty store, and the same pull again (nothing fetched). Prints a
Markdown table of medians. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from builds.engine import image as images  # noqa: E402
from builds.engine.builder import BuildOptions, build  # noqa: E402
from builds.engine.registry.pull import pull  # noqa: E402
from builds.engine.registry.push import push  # noqa: E402
from builds.engine.sandbox import Limits  # noqa: E402
from builds.engine.seed import busybox_rootfs  # noqa: E402
from builds.engine.store import Store  # noqa: E402
from tests.engine.registry_server import running_registry  # noqa: E402


def _image(store: Store, work: Path, layers: int, layer_mb: int) -> None:
    images.import_any(store, busybox_rootfs(work / "busybox.tar"), "busybox:bench")
    context = work / "ctx"
    context.mkdir()
    steps = "".join(f"RUN head -c {layer_mb}m /dev/urandom > /data{i}\n" for i in range(layers))
    (context / "Dockerfile").write_text(f"FROM busybox:bench\n{steps}")
    result = build(store, BuildOptions(context=context, tag="bench:1", limits=Limits(disk_bytes=4 << 30)))
    if result.status != "succeeded":
        raise SystemExit(f"the image did not build: {result.error}")


def _round(store: Store, work: Path, rep: int) -> list[tuple[str, float, int]]:
    """One of each transfer against a fresh registry: (name, seconds, bytes moved)."""
    out = []
    with running_registry(work / f"registry{rep}") as registry:
        ref, copy = f"{registry.host}/bench:1", f"{registry.host}/copy:1"
        pulled = work / f"pulled{rep}"
        runs: list[tuple[str, Callable[[], Any]]] = [
            ("push, empty registry", lambda: push(store, "bench:1", ref)),
            ("push, every layer there (other repository)", lambda: push(store, "bench:1", copy)),
            ("pull, empty store", lambda: pull(Store(pulled), ref)),
            ("pull again, nothing to fetch", lambda: pull(Store(pulled), ref)),
        ]
        for name, run in runs:
            t0 = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - t0
            out.append((name, seconds, getattr(result, "uploaded", None) or getattr(result, "fetched", 0)))
    # On a registry of its own: on the first, the store would find its layers there and mount them.
    with running_registry(work / f"gzip-registry{rep}") as registry:
        t0 = time.perf_counter()
        result = push(store, "bench:1", f"{registry.host}/bench:1", compress=True)
        out.insert(2, ("push --gzip, empty registry", time.perf_counter() - t0, result.uploaded))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--layer-mb", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {}
    moved: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        work = Path(tmp)
        store = Store(work / "store")
        _image(store, work, args.layers, args.layer_mb)
        total = sum(store.layer_tar_size(layer) for layer in store.get_image("bench:1").layers)
        for rep in range(args.reps):
            for name, seconds, count in _round(store, work, rep):
                samples.setdefault(name, []).append(seconds)
                moved[name] = count
    print(f"{args.layers + 1} layers, {total / 1e6:.1f} MB of layer tars, median of {args.reps}\n")
    print("| transfer | seconds | MB moved | MB/s |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        rate = f"{moved[name] / 1e6 / median:.0f}" if moved[name] else "-"
        print(f"| {name} | {median:.2f} | {moved[name] / 1e6:.1f} | {rate} |")


if __name__ == "__main__":
    main()
