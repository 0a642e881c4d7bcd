"""When a layer was last used, for evict.py's order: its facts file's mtime (l/<id>.json),
set when the layer is written and again by each cache lookup that finds it."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

_LAYER_ID = re.compile(r"[0-9a-f]{16}")


def mark_used(layers: Path, layer_id: object) -> None:
    """Say the layer was used now. A name that is not a layer id (a record from elsewhere) is
    ignored: it never becomes a path."""
    if isinstance(layer_id, str) and _LAYER_ID.fullmatch(layer_id):
        with contextlib.suppress(OSError):
            os.utime(layers / f"{layer_id}.json")
