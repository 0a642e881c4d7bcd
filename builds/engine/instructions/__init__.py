"""One module per instruction family; STEPS maps a keyword to the class that handles it.

FROM is not here: it starts a stage, which the builder does.
"""

from __future__ import annotations

from .base import BuildEnv, Planned, StageState, Step
from .copy import Add, Copy
from .metadata import METADATA_STEPS
from .run import Run
from .workdir import Workdir

_ALL: list[type[Step]] = [Run, Copy, Add, Workdir, *METADATA_STEPS]
STEPS: dict[str, type[Step]] = {cls.keyword: cls for cls in _ALL}

__all__ = ["STEPS", "BuildEnv", "Planned", "StageState", "Step"]
