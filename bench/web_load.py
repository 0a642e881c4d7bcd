#!/usr/bin/env python3
"""A classroom presses Build: N people (60) each start a build of the same classroom Dockerfile
within a few seconds (10) and watch it on its websocket, against the studio as `make run` starts
it (SQLite, the embedded Redis, one Celery worker with two processes, uvicorn).

For every build it records, from the moment its POST was sent: the first event on the socket,
and build.finished. Then it compares what each socket received with what the studio stored:
every seq 1..N exactly once, or the build counts events lost.

    .venv/bin/python bench/web_load.py                  # starts its own studio in a temp dir
    .venv/bin/python bench/web_load.py --url http://127.0.0.1:8000   # one already running

Prints a Markdown table; --json FILE also writes every sample.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

PROJECT_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "layer-cake-1984"

# What a class builds: the shared part (requirements) is the same for everyone and cached after the
# first build; each student's own files differ, so COPY . . and the steps after it are rebuilt.
DOCKERFILE = """\
FROM studio/busybox:1.35
WORKDIR /app
COPY requirements.txt .
RUN echo "installing $(wc -l < requirements.txt) requirements" && sleep 1 && mkdir -p /opt/deps
COPY . .
RUN sh build.sh{work}
CMD ["sh", "run.sh"]
"""
REQUIREMENTS = "flask==3.0.0\nrequests==2.32.0\n"
BUILD_SH = """\
echo "building for $(cat student.txt)"
for i in 1 2 3 4 5; do echo "compiling part $i"; done
cp student.txt /app/built.txt
"""


@dataclass
class Sample:
    user: str
    build: int = 0
    offset_s: float = 0.0  # when, after the first POST, this one was sent
    first_event_s: float | None = None
    finished_s: float | None = None
    status: str = ""
    received: list[int] = field(default_factory=list)
    stored: int = 0
    lost: int = 0
    duplicates: int = 0
    queued_s: float | None = None  # started_at - queued_at, from the studio
    build_ms: int | None = None  # the engine's own duration
    error: str = ""


class Person:
    """A browser: cookies, the CSRF header, websockets."""

    def __init__(self, base: str, username: str) -> None:
        self.base, self.username = base, username
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.cookies if c.name == name), "")

    def call(self, method: str, path: str, payload: Any = None, form: dict[str, str] | None = None) -> Any:
        headers = {"Origin": self.base, "Referer": self.base + path, "X-CSRFToken": self.cookie("csrftoken")}
        body = None
        if payload is not None:
            body, headers["Content-Type"] = json.dumps(payload).encode(), "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=60) as reply:
                text = reply.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:300]!r}") from None
        return json.loads(text) if path.startswith("/api/") else text

    def sign_up(self) -> None:
        self.call("GET", "/accounts/signup/")
        form = {"username": self.username, "password1": PASSWORD, "password2": PASSWORD}
        page = self.call("POST", "/accounts/signup/", form=form).decode()
        if f"Signed in as <strong>{self.username}</strong>" not in page:
            raise RuntimeError(f"signing up {self.username} failed")

    def websocket(self, path: str) -> Any:
        url = re.sub(r"^http", "ws", self.base) + path
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        return connect(
            url, origin=self.base, additional_headers={"Cookie": cookies}, proxy=None, open_timeout=30
        )


def prepare(person: Person, run_id: str, work_s: float) -> int:
    person.sign_up()
    dockerfile = DOCKERFILE.format(work=f" && sleep {work_s:g}" if work_s else "")
    project = person.call("POST", "/api/projects/", {"name": f"classroom-{run_id}", "dockerfile": dockerfile})
    files = {
        "requirements.txt": REQUIREMENTS,
        "build.sh": BUILD_SH,
        "student.txt": person.username + "\n",
        "run.sh": "cat /app/built.txt\n",
    }
    for path, content in files.items():
        person.call("PUT", f"/api/projects/{project['id']}/files/{path}", {"content": content})
    return int(project["id"])


def press_build(person: Person, project_id: int, start: float, sample: Sample, timeout_s: float) -> None:
    sent = time.monotonic()
    sample.offset_s = sent - start
    try:
        build = person.call("POST", f"/api/projects/{project_id}/builds/", {})
        sample.build = build["id"]
        with person.websocket(f"/ws/builds/{build['id']}/") as ws:
            while True:
                event = json.loads(ws.recv(timeout=max(0.1, sent + timeout_s - time.monotonic())))
                now = time.monotonic() - sent
                if sample.first_event_s is None:
                    sample.first_event_s = now
                sample.received.append(event["seq"])
                if event["type"] == "build.finished":
                    sample.finished_s, sample.status = now, event["status"]
                    return
    except Exception as exc:
        sample.error = f"{type(exc).__name__}: {exc}"


def check(person: Person, sample: Sample) -> None:
    if not sample.build:
        return
    stored: list[dict[str, Any]] = []
    while True:
        after = stored[-1]["seq"] if stored else 0
        page = person.call("GET", f"/api/builds/{sample.build}/events/?after={after}")
        stored.extend(page["events"])
        if not page["events"]:
            break
    sample.stored = len(stored)
    got = set(sample.received)
    sample.lost = len({e["seq"] for e in stored} - got)
    sample.duplicates = len(sample.received) - len(got)
    build = person.call("GET", f"/api/builds/{sample.build}/")
    if build["started_at"]:
        started = datetime.fromisoformat(build["started_at"]) - datetime.fromisoformat(build["queued_at"])
        sample.queued_s = started.total_seconds()
    sample.build_ms = build["duration_ms"]
    sample.status = sample.status or build["status"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def report(samples: list[Sample], wall_s: float, users: int, window_s: float, work_s: float) -> str:
    def row(name: str, values: list[float]) -> str:
        if not values:
            return f"| {name} | - | - | - |"
        return f"| {name} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} | {max(values):.2f} |"

    first = [s.first_event_s for s in samples if s.first_event_s is not None]
    finished = [s.finished_s for s in samples if s.finished_s is not None]
    queued = [s.queued_s for s in samples if s.queued_s is not None]
    engine = [s.build_ms / 1000 for s in samples if s.build_ms is not None]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[s.status or "no outcome"] = statuses.get(s.status or "no outcome", 0) + 1
    work = f", each student's own RUN step taking {work_s:g} s more" if work_s else ""
    lines = [
        f"{users} people pressed Build within {window_s:g} s{work}; the last build finished "
        f"{wall_s:.1f} s after the first press.",
        "",
        "| seconds from pressing Build | p50 | p95 | max |",
        "|---|---|---|---|",
        row("first event on the socket", first),
        row("build.finished on the socket", finished),
        row("waiting in the queue (started - queued)", queued),
        row("the build itself (engine)", engine),
        "",
        f"Outcomes: {', '.join(f'{n} {k}' for k, n in sorted(statuses.items()))}. "
        f"Events stored: {sum(s.stored for s in samples)}; received on the sockets: "
        f"{sum(len(s.received) for s in samples)}; **lost: {sum(s.lost for s in samples)}**; "
        f"received twice: {sum(s.duplicates for s in samples)}.",
    ]
    errors = [f"{s.user}: {s.error}" for s in samples if s.error]
    if errors:
        lines += ["", "Errors:", *(f"- {e}" for e in errors[:10])]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def studio(python: str) -> Iterator[str]:
    """The studio as `make run` starts it (migrate, seed, then the runner), in a temporary
    directory, on free ports."""
    with tempfile.TemporaryDirectory(prefix="studio-web-load-") as state:
        port = free_port()
        env = {
            **os.environ,
            "STUDIO_VAR_DIR": state,
            "PORT": str(port),
            "STUDIO_REDIS_PORT": str(free_port()),
        }
        for name in ("DATABASE_URL", "REDIS_URL", "STUDIO_DATA_DIR"):
            env.pop(name, None)
        manage = [python, str(PROJECT_DIR / "manage.py")]
        for step in (["migrate", "--noinput"], ["seed"]):
            subprocess.run([*manage, *step], env=env, cwd=PROJECT_DIR, check=True, capture_output=True)
        log = open(Path(state) / "runner.log", "wb")  # noqa: SIM115 - the runner keeps it
        runner = subprocess.Popen(
            [python, "-m", "studio.runner"], env=env, cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 90
            while b"is running at" not in (Path(state) / "runner.log").read_bytes():
                if runner.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((Path(state) / "runner.log").read_text(errors="replace")[-3000:])
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            runner.terminate()
            runner.wait(60)
            log.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--window", type=float, default=10.0, help="seconds over which they press Build")
    parser.add_argument("--url", help="a running studio (default: start one as make run does)")
    parser.add_argument(
        "--student-work",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds each student's own RUN step takes beyond its commands (sleep S; default 0)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a build may take to finish")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--python", default=str(PROJECT_DIR / ".venv" / "bin" / "python"))
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        base = args.url or stack.enter_context(studio(args.python))
        run_id = f"{int(time.time())}"
        people = [Person(base, f"student{i:02d}-{run_id}") for i in range(args.users)]
        print(f"preparing {args.users} people and projects at {base} …", file=sys.stderr)
        with ThreadPoolExecutor(8) as pool:
            projects = list(pool.map(lambda p: prepare(p, run_id, args.student_work), people))

        samples = [Sample(p.username) for p in people]
        print(f"{args.users} people press Build within {args.window:g} s …", file=sys.stderr)
        start = time.monotonic()
        threads = []
        for i, (person, project_id, sample) in enumerate(zip(people, projects, samples, strict=True)):
            time.sleep(max(0.0, start + i * args.window / args.users - time.monotonic()))
            thread = threading.Thread(
                target=press_build, args=(person, project_id, start, sample, args.timeout)
            )
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        wall = max((s.offset_s + (s.finished_s or 0)) for s in samples)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(check, people, samples))

    print(report(samples, wall, args.users, args.window, args.student_work))
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in samples], indent=1))
    return 0 if all(s.status == "succeeded" and not s.lost for s in samples) else 1


if __name__ == "__main__":
    sys.exit(main())
