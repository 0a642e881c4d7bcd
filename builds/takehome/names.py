"""Names for an image leaving the studio, each made or checked strictly, since a project's name
and whatever a person types are hostile: the name a downloaded archive loads as, its file name,
and where a push goes (the operator's registry and prefix; the person chooses only the
repository under it and the tag). No Django here: the settings module reads STUDIO_PUSH_REGISTRY
with `parse_push_registry`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from builds.engine.errors import InputError
from builds.engine.reference import parse_reference

# Docker's grammar (distribution/reference): path components of lowercase letters and digits
# joined by one separator, a tag of word characters, dots and dashes.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?")
MAX_REPOSITORY = 128  # the part a person types
MAX_COMPONENTS = 3
MAX_REFERENCE = 255  # Docker refuses a longer name


class BadName(ValueError):
    """A name refused, with the field it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PushRegistry:
    """The operator's push destination: `host` ("registry.example:5000") and `prefix`
    ("studio/students", or "")."""

    host: str
    prefix: str

    def reference(self, repository: str, tag: str) -> str:
        path = f"{self.prefix}/{repository}" if self.prefix else repository
        return f"{self.host}/{path}:{tag}"

    def __str__(self) -> str:
        return f"{self.host}/{self.prefix}" if self.prefix else self.host


def parse_push_registry(text: str) -> PushRegistry:
    """`host[:port][/prefix]` as STUDIO_PUSH_REGISTRY gives it; ValueError saying what is wrong."""
    host, _, prefix = text.strip().strip("/").partition("/")
    if not host or not _HOST.fullmatch(host):
        raise ValueError(f"{text!r}: expected host[:port]/prefix, e.g. registry.example:5000/studio")
    if "." not in host and ":" not in host and host != "localhost":
        raise ValueError(f"{text!r}: {host!r} would be read as a Docker Hub name, not a registry host; "
                         "give its domain or port")
    for part in filter(None, prefix.split("/")):
        if not _COMPONENT.match(part):
            raise ValueError(f"{text!r}: the prefix part {part!r} is not a valid repository name "
                             "(lowercase letters, digits, and . _ - between them)")
    prefix = "/".join(filter(None, prefix.split("/")))
    try:
        parse_reference(PushRegistry(host, prefix).reference("x", "latest"))
    except InputError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    return PushRegistry(host, prefix)


def check_repository(text: str) -> str:
    """The repository a person chose under the prefix ("my-app", "class/app"), or BadName."""
    if not text:
        raise BadName("repository", "repository is required, e.g. my-app")
    if len(text) > MAX_REPOSITORY:
        raise BadName("repository", f"repository must be at most {MAX_REPOSITORY} characters")
    parts = text.split("/")
    if len(parts) > MAX_COMPONENTS:
        raise BadName("repository", f"repository may have at most {MAX_COMPONENTS} parts separated by /")
    for part in parts:
        if not _COMPONENT.match(part):
            raise BadName("repository", "repository must be lowercase letters and digits, with single "
                                           ". _ or - between them and / between parts (e.g. my-app)")
    return text


def check_tag(text: str) -> str:
    if not text:
        raise BadName("tag", "tag is required, e.g. latest")
    if not _TAG.match(text):
        raise BadName("tag", "tag must be up to 128 letters, digits, _ . or -, not starting with . or -")
    return text


def check_destination(registry: PushRegistry, repository: str, tag: str) -> str:
    """The full reference a push goes to, every part checked."""
    reference = registry.reference(check_repository(repository), check_tag(tag))
    if len(reference) - len(tag) - 1 > MAX_REFERENCE:
        raise BadName("repository", f"the name {reference!r} is longer than Docker allows ({MAX_REFERENCE})")
    parse_reference(reference)  # the engine's own reading agrees (it raises InputError otherwise)
    return reference


def slug(text: str, fallback: str) -> str:
    """`text` as one lowercase repository component: accents dropped, every other character a
    dash, at most 48 long; `fallback` when nothing is left."""
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_.lower())
    made = "-".join(words)[:48].strip("-")
    return made or fallback


def archive_names(project_name: str, project_id: int, build_number: int) -> tuple[str, str]:
    """(the name:tag the archive loads as, its file name) for a build: both from the project's
    name made safe, e.g. ("studio/my-app:build-3", "my-app-build-3.tar")."""
    name = slug(project_name, f"project-{project_id}")
    return f"studio/{name}:build-{build_number}", f"{name}-build-{build_number}.tar"
