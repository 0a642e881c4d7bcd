"""Images in from registries and out to them, with the Distribution API v2 (`python-dxf`).

- ../reference: Docker's reading of "busybox", "host:5000/x:tag", "x@sha256:..." (strict
  here; the store reads its names with the same parser, leniently);
- settings: insecure registries, a CA, logins (docker config.json), the platform;
- pull / push: the transfers, reported as `image.pull` / `image.push` events (transfer);
- known: the index that lets a second pull fetch nothing and a push skip what is there.

This module imports no HTTP client: a build whose base images are all in the store (most
builds) does not pay for loading one.
"""

from __future__ import annotations

from ..store import Image, Store
from .transfer import Report


def local_image(store: Store, text: str) -> Image | None:
    """The stored image `text` names: by name and tag, by config digest, or (for
    "name@sha256:...") by the manifest digest it was pulled or pushed as."""
    if "@" in text:
        from .known import KnownBlobs

        image_digest = KnownBlobs(store).image_for_manifest(text.rsplit("@", 1)[1])
        if image_digest is not None:
            return store.get_image(image_digest)
    return store.get_image(text)


def find_or_pull(store: Store, text: str, *, report: Report | None = None, private_ok: bool = True) -> Image:
    """The stored image `text` names, pulled from its registry first when the store lacks it
    (what `FROM` does). Without `private_ok` (web builds) only registries on public addresses,
    and those the operator listed, are reached."""
    image = local_image(store, text)
    if image is not None:
        return image
    import dataclasses

    from .pull import pull
    from .settings import RegistrySettings

    settings = dataclasses.replace(RegistrySettings.from_env(), private_ok=private_ok)
    return pull(store, text, report=report, settings=settings).image
