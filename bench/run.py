"""Benchmark the layer engine against a real BuildKit, side by side in one run.

    python bench/run.py [--only w1,w3] [--reps N] [--skip-buildkit] [--skip-project] [--keep]

For every workload of ../shared/bench/make_workloads.py, and for each builder in turn (the
order alternates between repetitions), it times four builds:

    cold               empty cache (BuildKit: `docker builder prune -af`; project: a fresh store)
    no-change          the same build again: every step cached
    edit-source        after appending a line to the last source file
    edit-requirements  after appending a line to requirements.txt

Each is timed from outside as a whole command, start-up included:
`DOCKER_BUILDKIT=1 docker build --network=none --progress=plain` against a private dockerd
(bench/docker_daemon.sh) and `python manage.py build --progress json` with its own
STUDIO_DATA_DIR. Both see byte-identical contexts (the same edit lines), and `sync` runs before
every timed build so neither pays for the other's pending writes. Then, when w1 is selected,
bench/inprocess.py times fully cached w1 rebuilds inside one interpreter.

Prints a Markdown table of medians and project/BuildKit ratios, and writes every sample to
var/bench/<date>.json (--latest also writes bench/results/latest.json). Temporary directories,
the daemon's included, are removed at the end (deleting the big trees stalls this disk, so never
between timed builds), unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
SHARED_DIR = PROJECT_DIR.parent / "shared"
BASE_IMAGE = "studio/busybox:1.35"
DOCKER = "/usr/bin/docker"  # Debian's 20.10 client: a newer one wants buildx for DOCKER_BUILDKIT=1
SCENARIOS = ("cold", "no-change", "edit-source", "edit-requirements")


class Unavailable(Exception):
    """A builder cannot run this repetition (e.g. the project's CLI is not there yet)."""


# --------------------------------------------------------------------------- timed builds


@dataclass
class Sample:
    seconds: float
    ok: bool
    built: int | None = None  # steps not served from the cache
    cached: int | None = None
    error: str | None = None
    output: str = ""  # the build's own output; kept as a log file, not in the report
    load: float | None = None  # the machine's 1-minute load average right after the build


Completed = subprocess.CompletedProcess[str]


def run_timed(
    cmd: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> tuple[float, Completed]:
    """Run `cmd` after flushing pending writes, and time it wall-clock."""
    os.sync()
    start = time.perf_counter()
    proc = run_group(cmd, cwd=cwd, env=env, timeout=timeout)
    return time.perf_counter() - start, proc


def run_group(cmd: Sequence[str], *, cwd: Path, env: dict[str, str] | None, timeout: float) -> Completed:
    """Run `cmd` in its own process group, so that a build that hangs, or an interrupted run,
    leaves nothing of it behind: the whole group is killed."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        err = f"{err}\ntimed out after {timeout:.0f}s"
    except BaseException:
        kill_group(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def failure(proc: Completed) -> str:
    text = (proc.stderr or "").strip() or (proc.stdout or "").strip()
    return f"exit {proc.returncode}: {text[-600:]}"


# "#7 [3/6] COPY ...", "#5 [ 2/53] RUN ..." (padded), "#12 [stage-1 3/4] COPY ..."
_VERTEX = re.compile(r"^#(\d+) \[[^\]]*?\d+/\d+\] (\S+)")
_STATUS = re.compile(r"^#(\d+) (CACHED|DONE|ERROR)")


def buildkit_counts(output: str) -> tuple[int, int]:
    """(built, cached) step vertices in BuildKit's plain progress; FROM is no step."""
    steps: set[str] = set()
    cached: set[str] = set()
    for line in output.splitlines():
        if m := _VERTEX.match(line):
            if m.group(2).upper() != "FROM":
                steps.add(m.group(1))
        elif (m := _STATUS.match(line)) and m.group(2) == "CACHED":
            cached.add(m.group(1))
    return len(steps - cached), len(steps & cached)


# The instructions BuildKit runs as steps; FROM and metadata instructions are none.
BUILDKIT_STEPS = {"RUN", "COPY", "ADD", "WORKDIR"}


def project_counts(output: str) -> tuple[int, int]:
    """(built, cached) from the engine's `step.finished` events, counting what BuildKit counts as
    steps; skipped steps count for neither."""
    built = cached = 0
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("type") != "step.finished":
            continue
        keyword = str(event.get("instruction") or "RUN").split(maxsplit=1)[0].upper()
        if keyword not in BUILDKIT_STEPS:
            continue
        if event.get("status") == "cached":
            cached += 1
        elif event.get("status") != "skipped":
            built += 1
    return built, cached


# --------------------------------------------------------------------------- builders


class Builder(Protocol):
    name: str

    def reset(self) -> None:
        """Untimed: leave the builder with an empty cache and the base image present."""

    def build(self, context: Path, dockerfile: str, tag: str) -> Sample: ...


class DockerDaemon:
    """The private dockerd of bench/docker_daemon.sh, stopped on exit."""

    script = BENCH_DIR / "docker_daemon.sh"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.host = ""

    def start(self) -> None:
        subprocess.run([str(self.script), "install"], check=True)
        out = subprocess.run([str(self.script), "start", str(self.state_dir)],
                             check=True, capture_output=True, text=True).stdout
        self.host = out.strip().splitlines()[-1].split("=", 1)[1]

    def stop(self) -> None:
        subprocess.run([str(self.script), "stop", str(self.state_dir)], check=False)

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "1"}

    def docker(self, *args: str) -> str:
        proc = subprocess.run([DOCKER, *args], env=self.env(), check=True, capture_output=True, text=True)
        return proc.stdout


class BuildKit:
    name = "buildkit"

    def __init__(self, daemon: DockerDaemon, settle: float, timeout: float) -> None:
        self.daemon = daemon
        self.settle = settle
        self.timeout = timeout

    def setup(self, base_tarball: Path) -> None:
        self.daemon.docker("import", str(base_tarball), BASE_IMAGE)

    def reset(self) -> None:
        self.daemon.docker("builder", "prune", "-af")
        os.sync()
        time.sleep(self.settle)

    def build(self, context: Path, dockerfile: str, tag: str) -> Sample:
        cmd = [DOCKER, "build", "--network=none", "--progress=plain",
               "-f", str(context / dockerfile), "-t", tag, str(context)]
        seconds, proc = run_timed(cmd, cwd=context, env=self.daemon.env(), timeout=self.timeout)
        output = proc.stderr + proc.stdout
        built, cached = buildkit_counts(output)
        error = failure(proc) if proc.returncode != 0 else None
        return Sample(seconds, error is None, built, cached, error, output)


class Project:
    name = "project"

    def __init__(self, python: Path, stores: Path, base_tarball: Path, settle: float, timeout: float) -> None:
        self.python = python
        self.stores = stores
        self.base_tarball = base_tarball
        self.settle = settle
        self.timeout = timeout
        self.store: Path | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "STUDIO_DATA_DIR": str(self.store)}

    def reset(self) -> None:
        self.stores.mkdir(parents=True, exist_ok=True)
        self.store = Path(tempfile.mkdtemp(prefix="store-", dir=self.stores))
        cmd = [str(self.python), "manage.py", "images", "import", str(self.base_tarball), BASE_IMAGE]
        proc = subprocess.run(cmd, cwd=PROJECT_DIR, env=self.env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise Unavailable(f"`manage.py images import` failed, {failure(proc)}")
        os.sync()
        time.sleep(self.settle)

    def build(self, context: Path, dockerfile: str, tag: str) -> Sample:
        cmd = [str(self.python), "manage.py", "build", str(context), "-f", str(context / dockerfile),
               "-t", tag, "--progress", "json"]
        seconds, proc = run_timed(cmd, cwd=PROJECT_DIR, env=self.env(), timeout=self.timeout)
        built, cached = project_counts(proc.stdout)
        error = failure(proc) if proc.returncode != 0 else None
        return Sample(seconds, error is None, built, cached, error, proc.stdout + proc.stderr)


# --------------------------------------------------------------------------- workloads


@dataclass
class Workload:
    name: str
    context: Path
    dockerfile: str
    files: int
    bytes: int
    edits: dict[str, dict[str, str] | None]
    originals: dict[str, bytes] = field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.name.split("-", 1)[0]

    def tag(self) -> str:
        return f"bench/{self.name}:latest"

    def remember(self) -> None:
        for edit in self.edits.values():
            if edit is not None:
                self.originals[edit["file"]] = (self.context / edit["file"]).read_bytes()

    def restore(self) -> None:
        for rel, data in self.originals.items():
            path = self.context / rel
            if path.read_bytes() != data:
                path.write_bytes(data)

    def apply(self, scenario: str, nonce: str) -> None:
        edit = self.edits.get(scenario)
        if edit is None:
            return
        with open(self.context / edit["file"], "a") as f:
            f.write(edit["append"].replace("{nonce}", nonce))


def generate_workloads(out: Path, only: Sequence[str]) -> list[Workload]:
    """Generate (or reuse) the selected workloads in `out` and read its workloads.json."""
    cmd = [sys.executable, str(SHARED_DIR / "bench" / "make_workloads.py"), str(out)]
    if only:
        cmd += ["--only", ",".join(only)]
    subprocess.run(cmd, check=True)
    manifest = json.loads((out / "workloads.json").read_text())
    workloads = []
    for entry in manifest["workloads"]:
        if only and not any(entry["name"].startswith(p) for p in only):
            continue
        workload = Workload(entry["name"], out / entry["dir"], entry["dockerfile"],
                            entry["files"], entry["bytes"], entry["edits"])
        workload.remember()
        workloads.append(workload)
    return workloads


# --------------------------------------------------------------------------- measuring

Results = dict[str, dict[str, dict[str, list[Sample]]]]  # workload -> builder -> scenario -> samples


def run_sequence(builder: Builder, workload: Workload, rep: int) -> dict[str, Sample]:
    """One repetition: cold, then each warm scenario in order; stops at the first failure."""
    samples: dict[str, Sample] = {}
    workload.restore()
    try:
        builder.reset()
        for scenario in SCENARIOS:
            workload.apply(scenario, f"rep{rep}")
            sample = builder.build(workload.context, workload.dockerfile, workload.tag())
            sample.load = os.getloadavg()[0]
            samples[scenario] = sample
            if not sample.ok:
                break
    finally:
        workload.restore()
    return samples


def describe(sample: Sample) -> str:
    if not sample.ok:
        return f"FAILED {sample.seconds:.2f}s ({(sample.error or '').splitlines()[0][:120]})"
    return f"{sample.seconds:.3f}s built={sample.built} cached={sample.cached}"


def measure(
    builders: Sequence[Builder], workloads: Sequence[Workload], reps: int, unavailable: dict[str, str],
    logs: Path,
) -> Results:
    """Every sample of every builder, each build's output saved in `logs`; a builder that turns
    out `Unavailable` is noted in `unavailable` and left out of the rest of the run."""
    logs.mkdir(parents=True, exist_ok=True)
    results: Results = {w.name: {b.name: {s: [] for s in SCENARIOS} for b in builders} for w in workloads}
    for workload in workloads:
        for rep in range(1, reps + 1):
            order = builders if rep % 2 else list(reversed(builders))
            for builder in order:
                if builder.name in unavailable:
                    continue
                try:
                    samples = run_sequence(builder, workload, rep)
                except Unavailable as exc:
                    unavailable[builder.name] = str(exc)
                    log(f"{builder.name}: unavailable, skipped from now on: {last_line(str(exc))}")
                    continue
                for scenario, sample in samples.items():
                    results[workload.name][builder.name][scenario].append(sample)
                    log_name = f"{workload.short}-{builder.name}-rep{rep}-{scenario}.log"
                    (logs / log_name).write_text(sample.output)
                    log(f"{workload.short} rep {rep} {builder.name:8} {scenario:17} {describe(sample)}")
    return results


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- in-process


def measure_in_process(
    python: Path, workload: Workload, work: Path, loops: int, timeout: float
) -> dict[str, Any]:
    store = work / "inprocess-store"
    store.mkdir(parents=True, exist_ok=True)
    workload.restore()
    cmd = [str(python), str(BENCH_DIR / "inprocess.py"), "--context", str(workload.context),
           "--dockerfile", workload.dockerfile, "--store", str(store),
           "--base", str(SHARED_DIR / "oracle" / "base" / "busybox-rootfs.tar"), "--loops", str(loops)]
    proc = run_group(cmd, cwd=PROJECT_DIR, env=None, timeout=2 * timeout)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"skipped": f"bench/inprocess.py gave no result, {failure(proc)}"}


# --------------------------------------------------------------------------- summary


def summarize(samples: list[Sample]) -> dict[str, Any]:
    ok = [s.seconds for s in samples if s.ok]
    return {
        "median": statistics.median(ok) if ok else None,
        "min": min(ok) if ok else None,
        "max": max(ok) if ok else None,
        "samples": [{k: v for k, v in asdict(s).items() if k != "output"} for s in samples],
        "built": sorted({s.built for s in samples if s.ok and s.built is not None}),
        "failures": sum(1 for s in samples if not s.ok),
        "max_load": max((s.load for s in samples if s.load is not None), default=None),
    }


def ratio(project: float | None, buildkit: float | None) -> float | None:
    return project / buildkit if project is not None and buildkit else None


def summary(results: Results, workloads: Sequence[Workload]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for w in workloads:
        per_builder = {b: {s: summarize(v) for s, v in scen.items()} for b, scen in results[w.name].items()}
        entry: dict[str, Any] = {"files": w.files, "bytes": w.bytes, **per_builder}
        if "buildkit" in per_builder and "project" in per_builder:
            bk, pr = per_builder["buildkit"], per_builder["project"]
            entry["ratio"] = {s: ratio(pr[s]["median"], bk[s]["median"]) for s in SCENARIOS}
        out[w.name] = entry
    return out


def cell_seconds(stats: dict[str, Any] | None, pending: str) -> str:
    if stats is None:
        return pending
    if stats["median"] is None:
        return "failed" if stats["failures"] else pending
    return f"{stats['median']:.2f}"


def cell_built(stats: dict[str, Any] | None) -> str:
    if stats is None or not stats["built"]:
        return "-"
    return "/".join(str(b) for b in stats["built"])


def markdown(report: dict[str, Any]) -> str:
    rows = [
        "| workload | build | BuildKit (s) | project (s) | project / BuildKit "
        "| rebuilt steps (BuildKit; project) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, entry in report["workloads"].items():
        for scenario in SCENARIOS:
            bk = entry.get("buildkit", {}).get(scenario)
            pr = entry.get("project", {}).get(scenario)
            r = entry.get("ratio", {}).get(scenario)
            times = f"{cell_seconds(bk, 'skipped')} | {cell_seconds(pr, 'pending')}"
            shown = f"{r:.2f}" if r is not None else "-"
            rebuilt = f"{cell_built(bk)}; {cell_built(pr)}"
            if bk and pr and bk["built"] and pr["built"] and bk["built"] != pr["built"]:
                rebuilt += " (differs)"
            rows.append(f"| {name} | {scenario} | {times} | {shown} | {rebuilt} |")
    text = "\n".join(rows) + "\n"
    busy = busy_warning(report)
    if busy:
        text += "\n" + busy + "\n"
    inproc = report.get("in_process")
    if inproc is not None:
        text += "\n" + markdown_in_process(inproc, report["workloads"]) + "\n"
    return text


def busy_warning(report: dict[str, Any]) -> str:
    """A warning when the load went well past what the builds alone cause (about one per CPU)."""
    cpus = report["machine"].get("cpus") or 1
    loads = [
        stats["max_load"]
        for entry in report["workloads"].values()
        for builder in ("buildkit", "project")
        for stats in entry.get(builder, {}).values()
        if stats.get("max_load") is not None
    ]
    if not loads or max(loads) <= 2 * cpus:
        return ""
    return (f"**Warning:** the machine was busy during this run (1-minute load average up to "
            f"{max(loads):.1f} on {cpus} CPUs): other work competed with the builds, so these "
            f"figures are not reliable.")


def markdown_in_process(inproc: dict[str, Any], workloads: dict[str, Any]) -> str:
    if "skipped" in inproc:
        return f"In-process fully cached w1 rebuild: skipped ({last_line(inproc['skipped'])})."
    line = (f"In-process fully cached w1 rebuild (engine only, {inproc['loops']} loops): "
            f"median {inproc['median'] * 1000:.1f} ms, min {inproc['min'] * 1000:.1f} ms")
    bk = workloads.get("w1-classroom", {}).get("buildkit", {}).get("no-change", {}).get("median")
    if bk:
        line += f"; {inproc['median'] / bk:.2f} x BuildKit's whole `docker build` ({bk * 1000:.0f} ms)"
    return line + "."


# --------------------------------------------------------------------------- machine facts


def command_output(cmd: Sequence[str], env: dict[str, str] | None = None) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def first_match(path: str, pattern: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if m := re.match(pattern, line):
                return m.group(1).strip()
    return None


def machine_facts(daemon: DockerDaemon | None, python: Path) -> dict[str, Any]:
    mem_kb = first_match("/proc/meminfo", r"MemTotal:\s+(\d+)")
    return {
        "cpu": first_match("/proc/cpuinfo", r"model name\s*:\s*(.*)"),
        "cpus": os.cpu_count(),
        "memory_gb": round(int(mem_kb) / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "os": first_match("/etc/os-release", r'PRETTY_NAME="?([^"]*)"?'),
        "docker_server": command_output([DOCKER, "version", "--format", "{{.Server.Version}}"], daemon.env())
        if daemon else None,
        "python": command_output([str(python), "-c", "import platform; print(platform.python_version())"]),
        "project_commit": command_output(["git", "-C", str(PROJECT_DIR), "rev-parse", "--short", "HEAD"]),
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated workload prefixes, e.g. w1,w3")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every sequence (default 3)")
    parser.add_argument("--skip-buildkit", action="store_true", help="no dockerd, no BuildKit figures")
    parser.add_argument("--skip-project", action="store_true", help="do not measure the project")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--loops", type=int, default=20, help="in-process cached w1 rebuilds (0: none)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after emptying a cache, for the disk to catch up (default 1)")
    parser.add_argument("--work-dir", type=Path, help="where temporary directories go (default: $TMPDIR)")
    parser.add_argument("--workloads", type=Path,
                        help="generate (or reuse) the workloads here and keep them (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a build is killed (900)")
    parser.add_argument("--wait-idle", type=float, default=300,
                        help="wait up to this many seconds for the load to drop first (default 300)")
    parser.add_argument("--out", type=Path, help="the JSON report (default var/bench/<date>.json)")
    parser.add_argument("--latest", action="store_true", help="also write bench/results/latest.json")
    parser.add_argument("--python", type=Path, help="the project's interpreter (default .venv/bin/python)")
    args = parser.parse_args(argv)
    args.only = [p for p in args.only.split(",") if p]
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.skip_buildkit and args.skip_project:
        parser.error("nothing to measure with both --skip-buildkit and --skip-project")
    if args.python is None:
        venv = PROJECT_DIR / ".venv" / "bin" / "python"
        args.python = venv if venv.exists() else Path(sys.executable)
    return args


def write_report(report: dict[str, Any], args: argparse.Namespace, stamp: str) -> list[Path]:
    paths = [args.out or PROJECT_DIR / "var" / "bench" / f"{stamp}.json"]
    if args.latest:
        paths.append(BENCH_DIR / "results" / "latest.json")
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    return paths


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the daemon is stopped and temp dirs go either way."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_for_idle(limit: float) -> float:
    """Wait (up to `limit` seconds) for the 1-minute load average to drop below the CPU count,
    so that the run does not start in the middle of someone else's work. Returns the load."""
    cpus = os.cpu_count() or 1
    deadline = time.monotonic() + limit
    load = os.getloadavg()[0]
    if load >= cpus and limit > 0:
        log(f"machine busy (1-minute load {load:.1f} on {cpus} CPUs): waiting up to {limit:.0f}s")
    while load >= cpus and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    started = datetime.datetime.now().astimezone()
    workloads = generate_workloads(args.workloads or work / "workloads", args.only)
    base = SHARED_DIR / "oracle" / "base" / "busybox-rootfs.tar"
    daemon: DockerDaemon | None = None
    builders: list[Builder] = []
    try:
        if not args.skip_buildkit:
            daemon = DockerDaemon(work / "dockerd")
            daemon.start()
            buildkit = BuildKit(daemon, args.settle, args.timeout)
            buildkit.setup(base)
            builders.append(buildkit)
        if not args.skip_project:
            builders.append(Project(args.python, work / "stores", base, args.settle, args.timeout))
        facts = machine_facts(daemon, args.python)
        facts["load_at_start"] = wait_for_idle(args.wait_idle)
        unavailable: dict[str, str] = {}
        results = measure(builders, workloads, args.reps, unavailable, work / "logs")
        inproc = None
        w1 = next((w for w in workloads if w.name.startswith("w1")), None)
        if w1 is not None and not args.skip_project and args.loops > 0:
            inproc = measure_in_process(args.python, w1, work, args.loops, args.timeout)
    finally:
        if daemon is not None:
            daemon.stop()
    return {
        "date": started.isoformat(timespec="seconds"),
        "machine": facts,
        "options": {"reps": args.reps, "only": args.only, "settle": args.settle, "loops": args.loops,
                    "wait_idle": args.wait_idle,
                    "builders": [b.name for b in builders]},
        "unavailable": unavailable,
        "workloads": summary(results, workloads),
        "in_process": inproc,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    parent = args.work_dir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="studio-bench-", dir=parent))
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    try:
        with terminate_as_interrupt():
            report = run(args, work)
            print(markdown(report), flush=True)
            for path in write_report(report, args, stamp):
                log(f"wrote {path}")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            log(f"removing {work}")
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
