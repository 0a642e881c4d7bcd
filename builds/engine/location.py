"""Where the project and its store are: read by the command line and by the warm engine's client,
which must stay cheap to import."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The store: STUDIO_DATA_DIR, else var/store in the project."""
    configured = os.environ.get("STUDIO_DATA_DIR")
    return Path(configured) if configured else PROJECT_DIR / "var" / "store"
