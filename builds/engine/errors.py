"""Errors the engine raises. Every user-facing error names the file and, where known, the line."""

from __future__ import annotations


class EngineError(Exception):
    """Base class. `exit_code` is what the command line exits with."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.details: dict[str, object] = {}
        super().__init__(self.describe())

    def with_details(self, **details: object) -> EngineError:
        self.details.update(details)
        return self

    def describe(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message}
        if self.file is not None:
            out["file"] = self.file
        if self.line is not None:
            out["line"] = self.line
        out.update(self.details)
        return out


class InputError(EngineError):
    """Invalid input: a parse error, a missing or escaping COPY source, an unknown image."""


class DockerfileError(InputError):
    """The Dockerfile itself is malformed (parse or validation error)."""


class ContextError(InputError):
    """A problem with the build context: missing source, path escaping the context."""


class ImageNotFound(InputError):
    """FROM or COPY --from names an image the store does not have."""


class StepFailed(EngineError):
    """A step ran and failed (non-zero exit, or a sandbox limit was hit)."""

    exit_code = 1
