"""How the store names what it keeps on disk: digests as hex, cache keys as file names."""

from __future__ import annotations

import hashlib
import re

HEX64 = re.compile(r"[0-9a-f]{64}")


def hex_of(digest: str) -> str:
    """The 64 hex of "sha256:<hex>" (or of bare hex); anything else is refused, so a digest
    can never name a path outside its directory."""
    hex_ = digest.removeprefix("sha256:")
    if not HEX64.fullmatch(hex_):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hex_


def key_file_name(key: str) -> str:
    """A cache key as a file name: the hex of a "sha256:" key, else a hash of the key (which
    can then hold any character, and cannot collide with a hex name)."""
    hex_ = key.removeprefix("sha256:")
    if key.startswith("sha256:") and HEX64.fullmatch(hex_):
        return hex_
    return "h" + hashlib.sha256(key.encode()).hexdigest()
