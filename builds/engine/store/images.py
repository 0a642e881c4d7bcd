"""Images and tags: image records (images/<hex>.json, by config digest) and the names that
point at them (tags.json, "name:tag" -> config digest)."""

from __future__ import annotations

import json
from pathlib import Path

from ..reference import local_name
from .blobs import Blobs
from .housekeeping import Housekeeping
from .names import HEX64, hex_of
from .objects import Image


class Images:
    """images/ and tags.json under a store's root; an image's config is a blob."""

    def __init__(self, root: Path, blobs: Blobs, keeping: Housekeeping) -> None:
        self.directory = root / "images"
        self.tags_file = root / "tags.json"
        self.blobs = blobs
        self.keeping = keeping

    def put(self, image: Image) -> str:
        config = image.config_bytes()
        image.digest = self.blobs.put(config)
        path = self.directory / f"{hex_of(image.digest)}.json"
        if not path.exists():
            self.keeping.write_atomic(path, json.dumps(image.to_json(), ensure_ascii=False).encode(),
                                      exclusive=True)
        return image.digest

    def get(self, ref: str) -> Image | None:
        """By "name[:tag]" (tag defaults to latest; "docker.io/library/" prefixes are ignored)
        or by "sha256:<hex>" config digest."""
        digest = ref.split("@", 1)[1] if "@" in ref else ref
        if not digest.startswith("sha256:") and not HEX64.fullmatch(digest):
            name, tag = local_name(ref)
            found = self.tags().get(f"{name}:{tag}")
            if found is None:
                return None
            digest = found
        try:
            data = json.loads((self.directory / f"{hex_of(digest)}.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return Image.from_json(data)

    def tag(self, name: str, digest: str) -> None:
        hex_of(digest)
        repo, tag = local_name(name)
        with self.keeping.lock("tags"):
            tags = self.tags()
            if tags.get(f"{repo}:{tag}") == digest:
                return
            tags[f"{repo}:{tag}"] = digest
            self._write_tags(tags)

    def untag(self, name: str) -> bool:
        repo, tag = local_name(name)
        with self.keeping.lock("tags"):
            tags = self.tags()
            if tags.pop(f"{repo}:{tag}", None) is None:
                return False
            self._write_tags(tags)
            return True

    def tags(self) -> dict[str, str]:
        try:
            return json.loads(self.tags_file.read_bytes())
        except FileNotFoundError:
            return {}

    def _write_tags(self, tags: dict[str, str]) -> None:
        self.keeping.write_atomic(self.tags_file, json.dumps(tags, indent=1, sort_keys=True).encode())
