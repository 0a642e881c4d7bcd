#!/usr/bin/env python3
"""A class of N students (60) pressing Build at once, against a studio with 1, 2 and 3 workers,
each worker with a store of its own (standing for a host of its own) and one shared cache: the
index in Redis, the layers in a registry (Debian's docker-registry).

For each number of workers a fresh studio is started (SQLite, Redis, the registry, uvicorn, the
workers), every student signs up and makes the classroom project of web_load.py, then:

- round 1: everyone presses Build at once (each person's cache scope is their own: all cold);
- round 2: everyone presses Build again, unchanged (whichever worker takes it: all cached);
- round 3, with two workers or more: the first worker stops (as its host going away would), and
  everyone presses Build again: the students it built for land on another worker, which has
  never seen their layers and pulls them from the registry (still all cached).

Reported per round: throughput (builds a minute, from the first press to the last finish),
p95 of the first event on the build's socket, the cache hit ratio (hits over the steps), and the
bytes the workers pushed to and pulled from the registry (from the workers' logs).

    .venv/bin/python bench/hosts_load.py [--users 60] [--workers 1,2,3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from web_load import PROJECT_DIR, Person, Sample, check, percentile, prepare, press_build

sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

from studio.runner import (
    celery_worker_argv,
    free_port,
    spawn,
    start_redis,
    stop,
    uvicorn_argv,
    wait_for_port,
)

KEEP = bool(os.environ.get("BENCH_KEEP"))  # keep the studio's directory, to read its logs
TRAFFIC = re.compile(rb"shared cache pushed (\d+) bytes, pulled (\d+) bytes")


def start_registry(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    root.mkdir(parents=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: "
        f"{root / 'storage'}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n"
    )
    binary = shutil.which("docker-registry")
    if binary is None:
        raise SystemExit("docker-registry is not installed (make test installs Debian's docker-registry)")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(root / "registry.log", "wb"))  # noqa: SIM115
    wait_for_port("127.0.0.1", port)
    return process, f"127.0.0.1:{port}"


def start_studio(root: Path, workers: int) -> tuple[str, list[Any], list[Path], Any]:
    from builds.engine import image as images
    from builds.engine.seed import busybox_rootfs
    from builds.engine.store import Store

    redis_port = free_port()
    redis = start_redis(redis_port, root / "redis", persist=False)
    registry, registry_host = start_registry(root / "registry")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "STUDIO_VAR_DIR": str(root),
        "DATABASE_URL": f"sqlite:///{root / 'studio.sqlite3'}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "STUDIO_CACHE_INDEX": f"redis://127.0.0.1:{redis_port}/1",
        "STUDIO_CACHE_REGISTRY": f"{registry_host}/studio-cache",
        "STUDIO_DATA_DIR": str(root / "web-store"),
        "STUDIO_BUILD_RATE_PER_MINUTE": "1000",
        "STUDIO_BUILD_QUEUE_PER_USER": "100",
        "SECRET_KEY": "bench-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=PROJECT_DIR, env=env,
                   check=True, capture_output=True)
    tar = busybox_rootfs(root / "busybox.tar")
    services, logs = [redis], []
    for n in range(workers):
        store = root / f"host{n + 1}" / "store"
        images.import_any(Store(store), tar, "studio/busybox:1.35")
        log = store.parent / "worker.log"
        argv = celery_worker_argv(concurrency=2, name=f"host{n + 1}@%h")
        services.append(spawn("worker", argv, env={**env, "STUDIO_DATA_DIR": str(store)}, log=log,
                              cwd=PROJECT_DIR))
        logs.append(log)
    port = free_port()
    web = spawn("uvicorn", uvicorn_argv("127.0.0.1", port), env=env, log=root / "uvicorn.log",
                cwd=PROJECT_DIR)
    services.append(web)
    wait_for_port("127.0.0.1", port, web)
    for log in logs:
        while b" ready." not in (log.read_bytes() if log.exists() else b""):
            time.sleep(0.2)
    return f"http://127.0.0.1:{port}", services, logs, registry


def traffic(logs: list[Path]) -> tuple[int, int]:
    pushed = pulled = 0
    for log in logs:
        for match in TRAFFIC.finditer(log.read_bytes()):
            pushed, pulled = pushed + int(match[1]), pulled + int(match[2])
    return pushed, pulled


def round_of(people: list[tuple[Person, int]], timeout_s: float) -> tuple[list[Sample], float]:
    samples = [Sample(user=p.username) for p, _ in people]
    start = time.monotonic()
    with ThreadPoolExecutor(len(people)) as pool:
        for (person, project), sample in zip(people, samples, strict=True):
            pool.submit(press_build, person, project, start, sample, timeout_s)
    wall = max((s.offset_s + (s.finished_s or 0) for s in samples), default=0.0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda ps: check(ps[0][0], ps[1]), zip(people, samples, strict=True)))
    return samples, wall


def hit_ratio(people: list[tuple[Person, int]], samples: list[Sample]) -> float:
    hits = steps = 0
    for (person, _), sample in zip(people, samples, strict=True):
        if sample.build:
            cache = person.call("GET", f"/api/builds/{sample.build}/")["cache"] or {}
            hits += cache.get("hits", 0)
            steps += cache.get("hits", 0) + cache.get("misses", 0)
    return hits / steps if steps else float("nan")


def measure(workers: int, users: int, timeout_s: float) -> list[dict[str, Any]]:
    rows = []
    tmp = tempfile.mkdtemp(prefix="studio-hosts-load-")
    try:
        url, services, logs, registry = start_studio(Path(tmp), workers)
        try:
            run_id = f"{int(time.time())}"
            people = [(Person(url, f"s{workers}-{i}-{run_id}"), 0) for i in range(users)]
            with ThreadPoolExecutor(8) as pool:
                projects = list(pool.map(lambda p: prepare(p[0], run_id, 0.0), people))
            people = [(p, project) for (p, _), project in zip(people, projects, strict=True)]
            before = (0, 0)
            for name in ("cold", "again", "moved")[: 3 if workers > 1 else 2]:
                if name == "moved":
                    stop([services[1]])  # worker 1, warm: it finishes its uploads, hands its scopes over
                samples, wall = round_of(people, timeout_s)
                after = traffic(logs)
                first = [s.first_event_s for s in samples if s.first_event_s is not None]
                ok = sum(s.status == "succeeded" for s in samples)
                rows.append({
                    "workers": workers, "round": name, "succeeded": ok, "builds": len(samples),
                    "wall_s": wall, "per_minute": ok / wall * 60 if wall else float("nan"),
                    "first_event_p95_s": percentile(first, 95),
                    "hit_ratio": hit_ratio(people, samples),
                    "pushed_bytes": after[0] - before[0], "pulled_bytes": after[1] - before[1],
                    "errors": [s.error for s in samples if s.error][:5],
                    "samples": [asdict(s) for s in samples],
                })
                before = after
        finally:
            stop(services)
            registry.terminate()
            registry.wait(30)
    finally:
        if not KEEP:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        rows += measure(workers, args.users, args.timeout)
    print(f"{args.users} students press Build at once: cold, then again unchanged, then (two "
          f"workers or more) again with the first worker stopped; {os.cpu_count()} CPUs on this "
          f"machine, load average {os.getloadavg()[0]:.2f} at the end.\n")
    print("| workers | round | succeeded | builds/min | first event p95 (s) | cache hits | "
          "pushed to registry | pulled from registry |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['round']} | {r['succeeded']}/{r['builds']} | {r['per_minute']:.1f} | "
              f"{r['first_event_p95_s']:.2f} | {r['hit_ratio']:.0%} | {r['pushed_bytes'] / 1e3:.0f} kB | "
              f"{r['pulled_bytes'] / 1e3:.0f} kB |")
        for error in r["errors"]:
            print(f"  error: {error}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
