"""Containers from the studio's page: a person runs their own finished build's image, watches its
output, sees its writable layer (what it added, changed and deleted), and commits it as one more
layer or removes it.

The parts, as the build domain has them: `models` (a container's state, in the database, so a
worker that dies loses nothing: the reaper marks its container failed), `services` (starting,
claiming, finishing, committing, removing, reaping), `tasks` (the Celery tasks that run one,
and commit or remove its layer on the worker holding it), `api` (the JSON endpoints) and
`consumers` (the websocket that streams one).

A container streams on its own channel group and websocket, `ws/containers/<id>/`, rather than
on its build's: a build's events are a finished, numbered record that ends with build.finished,
which every page replays; a build can be run many times, and a run's output belongs to the one
person who started it, not to everyone who may see the build.
"""
