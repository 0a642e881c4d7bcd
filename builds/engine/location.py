"""Where the project and its store are: read by the command line and by the warm engine's client,
which must stay cheap to import, so in `os.path` strings (pathlib loads `re` and more)."""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def store_dir() -> str:
    """The store: STUDIO_DATA_DIR, else var/store in the project."""
    return os.environ.get("STUDIO_DATA_DIR") or os.path.join(PROJECT_DIR, "var", "store")


def data_dir() -> "Path":
    """store_dir() as a Path."""
    from pathlib import Path

    return Path(store_dir())
