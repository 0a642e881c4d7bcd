"""Cache keys: a pure, chained, canonical hash of a step's inputs and its parent's key.

BuildKit keys an operation by its definition and the keys of its inputs; for COPY/ADD sources
it uses a checksum of their content instead. We mirror that: every key is sha256 over the
canonical JSON of {"parent": <parent key>, **inputs}. The inputs are kept beside the key in the
cache index, which is what lets a later build say *why* a step missed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SCRATCH_KEY = "sha256:" + hashlib.sha256(b'{"op":"scratch"}').hexdigest()


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def step_key(parent: str, inputs: dict[str, Any]) -> str:
    """The key of a step made from `inputs` on top of the state keyed `parent`."""
    return "sha256:" + hashlib.sha256(canonical({"parent": parent, **inputs})).hexdigest()


def base_key(image_digest: str | None) -> str:
    """The key of a stage's starting point: an image by its config digest, or scratch."""
    if image_digest is None:
        return SCRATCH_KEY
    return step_key("", {"op": "from", "image": image_digest})
