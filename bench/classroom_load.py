#!/usr/bin/env python3
"""A class of N students (60) each presses Build within a minute while their teacher watches the
dashboard, against the studio as `make run` starts it (SQLite, the embedded Redis, one Celery
worker, uvicorn).

The teacher's dashboard socket (`ws/classrooms/<id>/`) is open throughout. For every build it
records when the teacher's grid heard that it ended (the student's row arriving with the final
status) and compares that with when the build ended (the studio's `finished_at`) and with when
the student's own build socket said `build.finished`. Afterwards it checks that no build was
lost: every build the students started reached the grid, and the dashboard read afresh shows
each student's build, finished and judged.

    .venv/bin/python bench/classroom_load.py                  # starts its own studio in a temp dir
    .venv/bin/python bench/classroom_load.py --url http://127.0.0.1:8000   # one already running

The people, the teacher's starter project and the student copies come from `web_load.py`'s
classroom Dockerfile. Prints a Markdown table; --json FILE also writes every sample.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# web_load.py is a script beside this one, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from web_load import (
    BUILD_SH,
    DOCKERFILE,
    PROJECT_DIR,
    REQUIREMENTS,
    Person,
    percentile,
    studio,
)

FINAL = {"succeeded", "failed", "cancelled"}
CHECKS = [
    {"kind": "rebuild_after_change", "file": "student.txt", "max_steps": 2},
    {"kind": "image_size", "max_mb": 10},
    {"kind": "layers", "max": 8},
    {"kind": "absent_path", "path": "/usr/bin/gcc"},
]


@dataclass
class Sample:
    student: int = 0  # the student's place in the class
    user: str = ""
    build: int = 0
    offset_s: float = 0.0  # when, after the first press, this one was sent
    status: str = ""
    socket_finished_at: float | None = None  # wall clock: build.finished on the student's socket
    grid_finished_at: float | None = None  # wall clock: the final row on the teacher's socket
    finished_at: float | None = None  # wall clock: the build's finished_at, from the studio
    grid_delay_s: float | None = None  # grid - finished_at
    grid_after_socket_s: float | None = None  # grid - the student's socket
    judged: bool = False
    error: str = ""


@dataclass
class Teacher:
    """The dashboard's socket, read on its own thread: every message's arrival, and for each build
    the first time its row arrived finished."""

    person: Person
    classroom: int
    rows: int = 0
    steps: int = 0
    finished: dict[int, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)

    def listen(self) -> None:
        try:
            with self.person.websocket(f"/ws/classrooms/{self.classroom}/") as ws:
                while not self.stop.is_set():
                    try:
                        raw = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    now = time.time()
                    message = json.loads(raw)
                    if message["type"] == "classroom.snapshot":
                        self.ready.set()
                    elif message["type"] == "student.step":
                        self.steps += 1
                    elif message["type"] == "student.row":
                        self.rows += 1
                        build = message["row"]["build"]
                        if build and build["status"] in FINAL:
                            self.finished.setdefault(build["id"], now)
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.ready.set()


def prepare_class(base: str, run_id: str, users: int) -> tuple[Person, int, list[tuple[Person, int, int]]]:
    """The teacher, her class with the exercise handed out, and every student joined with a copy
    of their own (their student.txt made theirs)."""
    teacher = Person(base, f"teacher-{run_id}")
    teacher.sign_up()
    starter = teacher.call(
        "POST", "/api/projects/", {"name": "starter", "dockerfile": DOCKERFILE.format(work="")}
    )
    files = {
        "requirements.txt": REQUIREMENTS,
        "build.sh": BUILD_SH,
        "student.txt": "nobody\n",
        "run.sh": "cat built.txt\n",
    }
    for path, content in files.items():
        teacher.call("PUT", f"/api/projects/{starter['id']}/files/{path}", {"content": content})
    classroom = teacher.call("POST", "/api/classrooms/", {"name": f"Load {run_id}"})
    teacher.call(
        "POST",
        f"/api/classrooms/{classroom['id']}/exercises/",
        {"title": "Keep the cache warm", "project": starter["id"], "checks": CHECKS},
    )

    def join(i: int) -> tuple[Person, int, int]:
        student = Person(base, f"s{i:02d}-{run_id}")
        student.sign_up()
        joined = student.call(
            "POST",
            "/api/classrooms/join/",
            {"code": classroom["join_code"], "display_name": f"Student {i:02d}"},
        )
        copy = joined["exercises"][0]["project"]
        student.call("PUT", f"/api/projects/{copy}/files/student.txt", {"content": student.username + "\n"})
        return student, int(copy), int(joined["me"]["id"])

    with ThreadPoolExecutor(8) as pool:
        students = list(pool.map(join, range(users)))
    return teacher, int(classroom["id"]), students


def press_build(person: Person, project_id: int, start: float, sample: Sample, timeout_s: float) -> None:
    sent = time.monotonic()
    sample.offset_s = sent - start
    try:
        build = person.call("POST", f"/api/projects/{project_id}/builds/", {})
        sample.build = build["id"]
        with person.websocket(f"/ws/builds/{build['id']}/") as ws:
            while True:
                event = json.loads(ws.recv(timeout=max(0.1, sent + timeout_s - time.monotonic())))
                if event["type"] == "build.finished":
                    sample.socket_finished_at, sample.status = time.time(), event["status"]
                    return
    except Exception as exc:
        sample.error = f"{type(exc).__name__}: {exc}"


def settle(teacher: Teacher, samples: list[Sample], wait_s: float) -> None:
    """Give the grid up to `wait_s` more for any build it has not heard end."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(s.build and s.build not in teacher.finished for s in samples):
        time.sleep(0.1)


def check(teacher: Teacher, samples: list[Sample]) -> list[dict[str, Any]]:
    """Fill each sample from the studio's own record, and read the dashboard afresh."""
    for sample in samples:
        if not sample.build:
            continue
        build = teacher.person.call("GET", f"/api/builds/{sample.build}/")  # the teacher may look
        sample.status = sample.status or build["status"]
        if build["finished_at"]:
            sample.finished_at = datetime.fromisoformat(build["finished_at"]).timestamp()
        sample.grid_finished_at = teacher.finished.get(sample.build)
        if sample.grid_finished_at is not None and sample.finished_at is not None:
            sample.grid_delay_s = sample.grid_finished_at - sample.finished_at
        if sample.grid_finished_at is not None and sample.socket_finished_at is not None:
            sample.grid_after_socket_s = sample.grid_finished_at - sample.socket_finished_at
    rows: list[dict[str, Any]] = teacher.person.call(
        "GET", f"/api/classrooms/{teacher.classroom}/dashboard/"
    )["students"]
    by_student = {row["student"]: row for row in rows}
    for sample in samples:
        row = by_student.get(sample.student)
        sample.judged = bool(
            row
            and row["build"]
            and row["build"]["id"] == sample.build
            and row["checks"]["results"][0]["build"] == 1
        )
    return rows


def report(samples: list[Sample], teacher: Teacher, users: int, window_s: float, wall_s: float) -> str:
    def row(name: str, values: list[float]) -> str:
        if not values:
            return f"| {name} | - | - | - |"
        return f"| {name} | {percentile(values, 50):.3f} | {percentile(values, 95):.3f} | {max(values):.3f} |"

    delays = [s.grid_delay_s for s in samples if s.grid_delay_s is not None]
    after_socket = [s.grid_after_socket_s for s in samples if s.grid_after_socket_s is not None]
    started = [s for s in samples if s.build]
    reached = [s for s in started if s.grid_finished_at is not None]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[s.status or "no outcome"] = statuses.get(s.status or "no outcome", 0) + 1
    lines = [
        f"{users} students pressed Build within {window_s:g} s while their teacher watched the dashboard; "
        f"the last build finished {wall_s:.1f} s after the first press.",
        "",
        "| seconds | p50 | p95 | max |",
        "|---|---|---|---|",
        row("build ended (finished_at) → teacher's grid", delays),
        row("student's socket → teacher's grid", after_socket),
        "",
        f"Outcomes: {', '.join(f'{n} {k}' for k, n in sorted(statuses.items()))}. "
        f"Builds started: {len(started)}; reached the grid finished: {len(reached)}; "
        f"**lost: {len(started) - len(reached)}**; "
        f"judged and shown by the dashboard read afresh: {sum(s.judged for s in samples)}. "
        f"The teacher's socket carried {teacher.rows} rows and {teacher.steps} step cells.",
    ]
    errors = [f"{s.user}: {s.error}" for s in samples if s.error] + [f"teacher: {e}" for e in teacher.errors]
    if errors:
        lines += ["", "Errors:", *(f"- {e}" for e in errors[:10])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which they press Build")
    parser.add_argument("--url", help="a running studio (default: start one as make run does)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a build may take to finish")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--python", default=str(PROJECT_DIR / ".venv" / "bin" / "python"))
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        base = args.url or stack.enter_context(studio(args.python))
        run_id = f"{int(time.time())}"
        print(f"preparing a teacher and {args.users} students at {base} …", file=sys.stderr)
        person, classroom, students = prepare_class(base, run_id, args.users)
        teacher = Teacher(person, classroom)
        listener = threading.Thread(target=teacher.listen, daemon=True)
        listener.start()
        teacher.ready.wait(30)

        samples = [Sample(student=seat, user=who.username) for who, _, seat in students]
        print(f"{args.users} students press Build within {args.window:g} s …", file=sys.stderr)
        start = time.monotonic()
        threads = []
        for i, ((who, copy, _), sample) in enumerate(zip(students, samples, strict=True)):
            time.sleep(max(0.0, start + i * args.window / args.users - time.monotonic()))
            thread = threading.Thread(target=press_build, args=(who, copy, start, sample, args.timeout))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        wall = time.monotonic() - start
        settle(teacher, samples, wait_s=10)
        teacher.stop.set()
        listener.join(5)
        check(teacher, samples)

    print(report(samples, teacher, args.users, args.window, wall))
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in samples], indent=1))
    lost = any(s.build and s.grid_finished_at is None for s in samples)
    return 0 if all(s.status == "succeeded" and s.judged for s in samples) and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
