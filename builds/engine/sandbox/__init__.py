"""Run one RUN step under bubblewrap over an overlay of the parent layers.

The overlay's upper directory *is* the new layer: nothing diffs whole trees. After the run the
mount points bubblewrap itself made in the upper directory (dev/, proc/, and any parent
directories it created for them) are removed when the lower layers did not have them, so
the layer holds only what the command wrote.

How a run is put together, and why:

- A step's root is an unprivileged host uid. As root, each spawner (below) makes a user
  namespace mapping the step's ids 0..n to a subordinate range of the host's
  (STUDIO_SANDBOX_SUBUIDS), and a mount namespace it owns. Per step it forks a child that
  clones each layer directory as an idmapped mount (on-disk owner 0 is the range's first id),
  enters the user namespace, and stacks them with overlayfs (always `userxattr`, `volatile`),
  handing the layers over as descriptors: no options to outgrow, however deep the stack. The
  step's RUN --mount binds (idmapped too) and tmpfs go over it; bwrap, started there, binds
  it as the root. So files keep their on-disk owners in the layer, and nothing the step does
  as root is root on the host. A worker that is not root leaves the overlay to bwrap, which
  maps only the worker's uid (a stack too deep for overlay's options then runs under an outer
  bwrap that binds the layers under short names).
- /proc is masked as Docker masks it, and a seccomp filter (`syscalls`) allows only what a
  build needs.
- The command gets Docker's default capability set, not all of root's, and (where the devices
  cgroup exists) Docker's device rules.
- Limits use cgroup v1 controllers (memory, pids, devices) nested under this process's own
  cgroups. Moving a process into a cgroup can wait for an RCU grace period (~8 ms here, most
  of a small step), so nothing is moved per step: each thread keeps a small spawner process
  that lives in the thread's cgroups, and bwrap is born inside them.
- Output, limits, the cancel event and the exit are watched from one selector loop; no threads.

The modules: `model` (what a run is given and gives back), `bwrap` (the command line, mount
points, masks, deep stacks), `users` (USER), `syscalls` (the seccomp filter), `spawner` (the
per-thread process that makes the step's root and starts bwrap),
`cgroups` (the limits), `watch` (running and watching a step, its result), `upper` (the layer
left behind), and `runner`, which puts them together in `run`.

This package's own namespace holds only the model: a build that every step of which is cached
(most rebuilds) never loads the machinery that starts processes.
"""

from __future__ import annotations

from .model import DEFAULT_LIMITS, SHORT_DIR, Limits, Mount, OutputCallback, RunResult, SandboxError

__all__ = ["DEFAULT_LIMITS", "SHORT_DIR", "Limits", "Mount", "OutputCallback", "RunResult", "SandboxError"]
