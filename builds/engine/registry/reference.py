"""Image references read the way Docker reads them.

    busybox                      -> docker.io/library/busybox:latest
    me/app:1                     -> docker.io/me/app:1
    localhost:5000/x:tag         -> localhost:5000/x:tag   (a first part with "." or ":", or
                                                            "localhost", is a registry host)
    ghcr.io/o/r@sha256:<hex>     -> pinned to a manifest digest (no tag then, unless given)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..dockerhub import DOCKER_HUB, DOCKER_HUB_ALIASES, DOCKER_HUB_API, OFFICIAL_PREFIX
from ..errors import InputError

__all__ = ["DOCKER_HUB", "DOCKER_HUB_API", "Reference", "parse_reference"]
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?")


@dataclass(frozen=True)
class Reference:
    domain: str  # "docker.io", "127.0.0.1:5000", "ghcr.io"
    path: str  # the repository on that registry: "library/busybox", "me/app"
    tag: str | None  # None when only a digest was given
    digest: str | None  # "sha256:<hex>" of the manifest, when pinned

    @property
    def host(self) -> str:
        """Where the registry's API answers (Docker Hub's is not at docker.io itself)."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def repository(self) -> str:
        """"docker.io/library/busybox", the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def version(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def store_name(self) -> str | None:
        """The "name:tag" the store keeps the image under (None for a digest-only reference);
        the store drops Docker Hub's implicit prefixes itself."""
        return f"{self.repository}:{self.tag}" if self.tag else None

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Docker's reading of an image reference; a malformed one is an InputError naming it."""
    original = text
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InputError(f"invalid image reference {original!r}: {digest!r} is not a sha256 digest")
    domain, rest = DOCKER_HUB, text
    first, slash, remainder = text.partition("/")
    if slash and (("." in first or ":" in first) or first == "localhost" or first != first.lower()):
        domain, rest = first, remainder
        if not _HOST.fullmatch(domain):
            raise InputError(f"invalid image reference {original!r}: bad registry host {domain!r}")
    if domain in DOCKER_HUB_ALIASES:
        domain = DOCKER_HUB
    tag = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise InputError(f"invalid image reference {original!r}: bad tag {tag!r}")
    if not rest or not all(_COMPONENT.fullmatch(part) for part in rest.split("/")):
        raise InputError(f"invalid image reference {original!r}: a repository name is lowercase "
                         "letters, digits and separators (. _ __ -), parts joined by /")
    if domain == DOCKER_HUB and "/" not in rest:
        rest = f"{OFFICIAL_PREFIX}{rest}"
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain=domain, path=rest, tag=tag, digest=digest)
