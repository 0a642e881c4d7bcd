"""Several worker hosts on this machine, for the tests: a studio of its own (its own database,
its own Redis database, its web server) and Celery workers each with a store of its own, as if
each ran on a host of its own. Nothing is shared with the session's worker, which would otherwise
take builds from the shared queue."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.runner import free_port, spawn, stop, uvicorn_argv, wait_for_port
from tests.conftest import BASE_IMAGE, PROJECT_DIR, StudioServer, Worker

_redis_db = iter(range(5, 16))  # the session's Redis, a database per studio made here


class Hosts:
    def __init__(self, env: dict[str, str], root: Path, web: StudioServer, workers: list[Worker]) -> None:
        self.env, self.root, self.web, self.workers = env, root, web, workers

    def worker_of(self, build_id: int, table: str = "builds_build") -> Worker:
        """The worker that ran `build_id` (or another row of `table`), from the database's record
        of its claim."""
        with sqlite3.connect(self.root / "studio.sqlite3") as db:
            row = db.execute(f"SELECT worker FROM {table} WHERE id = ?", (build_id,)).fetchone()
        return next(w for w in self.workers if row and row[0].startswith(w.name + "@"))

    def container_worker(self, container_id: int) -> Worker:
        return self.worker_of(container_id, "containers_container")

    @staticmethod
    def shut_down(worker: Worker) -> None:
        """Stop the worker as `docker stop` or systemd would: SIGTERM to its main process, which
        lets what it is doing finish (a warm shutdown), then exits."""
        assert worker.service is not None
        worker.service.process.send_signal(signal.SIGTERM)
        worker.service.process.wait(timeout=120)

    def store_of(self, worker: Worker) -> Path:
        return Path(worker.env["STUDIO_DATA_DIR"])


def _import_base(env: dict[str, str], store: Path, tar: Path) -> None:
    from builds.engine import image as images
    from builds.engine.store import Store

    for name in (BASE_IMAGE, "busybox:latest"):
        images.import_any(Store(store), tar, name)


@contextmanager
def hosts(
    session_env: dict[str, str], root: Path, *, count: int, extra: dict[str, str] | None = None
) -> Iterator[Hosts]:
    """A studio with `count` workers, each with its own STUDIO_DATA_DIR holding the base image."""
    from builds.engine.seed import busybox_rootfs

    redis_url = session_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{next(_redis_db)}"
    env = {
        **session_env,
        "STUDIO_VAR_DIR": str(root),
        "DATABASE_URL": f"sqlite:///{root / 'studio.sqlite3'}",
        "REDIS_URL": redis_url,
        "STUDIO_DATA_DIR": str(root / "web-store"),
        **(extra or {}),
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=PROJECT_DIR, env=env,
                   check=True, capture_output=True)
    tar = busybox_rootfs(root / "busybox.tar")
    workers = []
    for n in range(count):
        store = root / f"host{n + 1}" / "store"
        _import_base(env, store, tar)
        workers.append(Worker({**env, "STUDIO_DATA_DIR": str(store)}, store.parent))
    port = free_port()
    argv = uvicorn_argv("127.0.0.1", port)
    web = spawn("uvicorn", argv, env=env, log=root / "uvicorn.log", cwd=PROJECT_DIR)
    try:
        wait_for_port("127.0.0.1", port, web)
        for worker in workers:
            worker.start()
        yield Hosts(env, root, StudioServer(f"http://127.0.0.1:{port}", web), workers)
    finally:
        for worker in workers:
            if worker.running:
                worker.stop()
        stop([web])
        shutil.rmtree(root / "web-store", ignore_errors=True)
