"""The build context: .dockerignore rules (ignore), the stat -> sha256 cache (hashcache), reading
the Dockerfile from inside the context (reading), and walking the tree with its checksums (tree)."""

from __future__ import annotations

from .hashcache import HashCache, sha256_file
from .ignore import (
    BadPattern,
    MatchInfo,
    Pattern,
    compile_pattern,
    docker_regex,
    go_glob,
    has_wildcards,
    match_path,
    parse_dockerignore,
    read_dockerignore,
)
from .reading import EscapesContext, read_inside, too_large
from .tree import BuildContext, Entry

__all__ = [
    "BadPattern",
    "BuildContext",
    "Entry",
    "EscapesContext",
    "HashCache",
    "MatchInfo",
    "Pattern",
    "compile_pattern",
    "docker_regex",
    "go_glob",
    "has_wildcards",
    "match_path",
    "parse_dockerignore",
    "read_dockerignore",
    "read_inside",
    "sha256_file",
    "too_large",
]
