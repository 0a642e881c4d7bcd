"""A build's counts as every page shows them: how many of its steps ended with each verdict."""

from __future__ import annotations

from builds.engine.verdicts import tally

from .models import Build


def build_counts(build: Build) -> dict[str, int]:
    """How many steps ended with each verdict (builds.engine.verdicts.tally over its events, kept
    when it finished); for a build finished before counts were kept, what its cache hits and
    misses said."""
    if build.counts:
        return dict(build.counts)
    return {**tally([]), "cached": build.cache_hits, "built": build.cache_misses}
