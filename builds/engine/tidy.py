"""Tidying a store after a command-line build, in the background.

A worker tidies its store between builds (builds.tasks.store_tidy). The command line has no
between: it ends with the build. So when the store has something to tidy (a trash that is not
empty, or work left in tmp/ by another process), `manage.py build` and `images` start this
module as a detached process of low priority and exit without waiting for it, much as git
runs its automatic gc. Deleting large trees stalls the disk's writes, so it stops as soon as
another process is at work in the store, and what is left waits for the next time:

    python -m builds.engine.tidy STORE
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from .store import Store

PROJECT_DIR = Path(__file__).resolve().parents[2]


def needed(store: Store) -> bool:
    """Whether the store has anything to tidy: something in the trash, or in tmp/ under
    another process's token (whether that process is gone, tidy() finds out). Two scandirs."""
    own = store.own_token()
    with contextlib.suppress(FileNotFoundError), os.scandir(store.trash) as trash:
        if next(trash, None) is not None:
            return True
    with contextlib.suppress(FileNotFoundError), os.scandir(store.tmp) as entries:
        for entry in entries:
            token = store.token_of(entry.name)
            if token is not None and token != own:
                return True
    return False


def start_if_needed(store: Store) -> None:
    """Start `tidy` on `store` in a process of its own, left running, when there is something
    to tidy; for a process that is done with the store. Never raises: tidying only saves disk
    space."""
    if os.environ.get("STUDIO_TIDY") == "0":
        return
    with contextlib.suppress(OSError):
        if needed(store):
            store.release()  # or the tidy would find this process still at work
            subprocess.Popen(
                [sys.executable, "-m", "builds.engine.tidy", str(store.root)],
                cwd=PROJECT_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )


def tidy(store: Store) -> int:
    """Reclaim what dead processes left in tmp/ and empty the trash, unless another tidy is at
    it or another process is at work in the store; stop when one starts. Returns how many
    trash entries went."""
    with store.lock_if_free("tidy") as mine:
        if not mine or store.others_at_work():
            return 0
        store.reclaim()
        return store.empty_trash(stop=store.others_at_work)


def tidy_at_low_priority(root: Path | str) -> int:
    """`tidy` at the lowest CPU priority: as the command line's background process runs it, and
    the warm engine's child once no build runs."""
    os.nice(19)
    return tidy(Store(root))


if __name__ == "__main__":
    tidy_at_low_priority(sys.argv[1])
