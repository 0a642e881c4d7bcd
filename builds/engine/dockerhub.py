"""Docker Hub's names, in one table: the domains it answers to, where its API is, the key its
logins are filed under, and the implicit "library/" of its official images.

A leaf module (imports nothing of the engine) so that the store and the registry code, which
import each other, can both read it.
"""

from __future__ import annotations

DOCKER_HUB = "docker.io"  # the domain a reference without one names
DOCKER_HUB_API = "registry-1.docker.io"  # where its registry API answers
# Every spelling of Docker Hub's domain in an image reference; each means DOCKER_HUB.
DOCKER_HUB_ALIASES = (DOCKER_HUB, "index.docker.io", DOCKER_HUB_API)
# Docker's config.json files Hub's logins under its old index address (or any alias).
DOCKER_HUB_LOGIN_KEYS = ("https://index.docker.io/v1/", *DOCKER_HUB_ALIASES)
OFFICIAL_PREFIX = "library/"  # "busybox" on Docker Hub is "library/busybox"
