"""Run one RUN step under bubblewrap over an overlay of the parent layers.

The overlay's upper directory *is* the new layer: nothing diffs whole trees. After the run the
mount points bubblewrap itself made in the upper directory (dev/, proc/, and any parent
directories it created for them) are removed when the lower layers did not have them, so
the layer holds only what the command wrote.

How a run is put together, and why:

- bwrap runs as real root without a user namespace, so files keep their real owners in the
  layer. The overlay is always mounted with `userxattr`: opaque directories it makes carry
  `user.overlay.opaque`, and that is the xattr it honours in the lower layers too. The
  spawner (below) mounts it, `volatile`, in a mount namespace of its own, and bwrap binds it
  as the root; without the rights for that, or for a stack too deep for overlay's options,
  bwrap mounts it itself (the last `--overlay-src` is the topmost layer).
- The command gets Docker's default capability set, not all of root's, and (where the devices
  cgroup exists) Docker's device rules.
- Limits use cgroup v1 controllers (memory, pids, devices) nested under this process's own
  cgroups. Moving a process into a cgroup can wait for an RCU grace period (~8 ms here, most
  of a small step), so nothing is moved per step: each thread keeps a small spawner process
  that lives in the thread's cgroups, and bwrap is born inside them.
- Output, limits, the cancel event and the exit are watched from one selector loop; no threads.

The modules: `model` (what a run is given and gives back), `bwrap` (the command line, mount
points, deep stacks), `users` (USER), `spawner` (the per-thread process that starts bwrap),
`cgroups` (the limits), `watch` (running and watching a step, its result), `upper` (the layer
left behind), and `runner`, which puts them together in `run`.

This package's own namespace holds only the model: a build that every step of which is cached
(most rebuilds) never loads the machinery that starts processes.
"""

from __future__ import annotations

from .model import DEFAULT_LIMITS, SHORT_DIR, Limits, Mount, OutputCallback, RunResult, SandboxError

__all__ = ["DEFAULT_LIMITS", "SHORT_DIR", "Limits", "Mount", "OutputCallback", "RunResult", "SandboxError"]
