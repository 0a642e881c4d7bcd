"""Image references read the way Docker reads them: the engine's one parser of them.

    busybox                      -> docker.io/library/busybox:latest
    me/app:1                     -> docker.io/me/app:1
    localhost:5000/x:tag         -> localhost:5000/x:tag   (a first part with "." or ":", or
                                                            "localhost", is a registry host)
    ghcr.io/o/r@sha256:<hex>     -> pinned to a manifest digest (no tag then, unless given)

Two callers, two needs, one reading:
- the registry code (pull, push) talks to a registry with the reference, so it reads it
  strictly: a malformed one is refused, naming what is wrong, before any request is made;
- the store keeps images under names ("name:tag") that people choose (`build -t`, `images
  import`), that archives carry (a `docker save`'s RepoTags), and that a FROM looks up before
  any pull: those are read leniently, the same way but refusing nothing, since a name the
  store keeps is only a key (refusing one would change what a build or an import accepts),
  and a lookup of a name that cannot exist simply finds nothing (the pull that follows then
  refuses it with the strict reading's message). See `local_name`.

A leaf module (it imports nothing of the engine but its errors and Docker Hub's names), so that
the store and the registry code, which import each other, can both use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .dockerhub import DOCKER_HUB, DOCKER_HUB_ALIASES, DOCKER_HUB_API, OFFICIAL_PREFIX
from .errors import InputError

__all__ = ["DEFAULT_TAG", "DOCKER_HUB", "DOCKER_HUB_API", "Reference", "local_name", "parse_reference"]
DEFAULT_TAG = "latest"
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
    def local_repository(self) -> str:
        """The name without Docker Hub's implicit parts: "busybox" for docker.io/library/busybox,
        "me/app" for docker.io/me/app, "localhost:5000/x" as it is."""
        if self.domain != DOCKER_HUB:
            return self.repository
        return self.path.removeprefix(OFFICIAL_PREFIX)

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


def parse_reference(text: str, *, lenient: bool = False) -> Reference:
    """Docker's reading of an image reference; a malformed one is an InputError naming it.

    `lenient` (for names the store keeps, see the module's docstring) refuses nothing, and
    reads no digest: "@" is then part of the name or tag, since a store name is "name[:tag]"
    and the store looks up digests itself before it reads a name."""
    original = text
    digest = None
    if "@" in text and not lenient:
        text, digest = text.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InputError(f"invalid image reference {original!r}: {digest!r} is not a sha256 digest")
    domain, rest = DOCKER_HUB, text
    first, slash, remainder = text.partition("/")
    if slash and (("." in first or ":" in first) or first == "localhost" or first != first.lower()):
        domain, rest = first, remainder
        if not lenient and not _HOST.fullmatch(domain):
            raise InputError(f"invalid image reference {original!r}: bad registry host {domain!r}")
    if domain in DOCKER_HUB_ALIASES:
        domain = DOCKER_HUB
    tag = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
        if not lenient and not _TAG.fullmatch(tag):
            raise InputError(f"invalid image reference {original!r}: bad tag {tag!r}")
    if not lenient and (not rest or not all(_COMPONENT.fullmatch(part) for part in rest.split("/"))):
        raise InputError(f"invalid image reference {original!r}: a repository name is lowercase "
                         "letters, digits and separators (. _ __ -), parts joined by /")
    if domain == DOCKER_HUB and "/" not in rest:
        rest = f"{OFFICIAL_PREFIX}{rest}"
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=rest, tag=tag, digest=digest)


def local_name(text: str) -> tuple[str, str]:
    """ "name[:tag]" -> (name, tag) as the store keeps it, read leniently, with Docker Hub's
    implicit parts dropped: "docker.io/library/busybox", "library/busybox" and "busybox" are
    one name."""
    ref = parse_reference(text, lenient=True)
    return ref.local_repository, ref.tag if ref.tag is not None else DEFAULT_TAG
