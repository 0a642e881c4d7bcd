"""What one step may still write into its layer, for COPY and ADD (RUN's is the sandbox's)."""

from __future__ import annotations


class UnsafeLayer(ValueError):
    """The tar is not a layer we can unpack safely or at all."""


class LayerLimit(UnsafeLayer):
    """Unpacking would pass the layer's disk or file-count limit."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit  # "disk" | "files"


def size_text(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.4g} {unit}"
    return f"{size} bytes"


class LayerBudget:
    """What one step may still write into its layer: bytes of file content and entries. COPY
    charges what it copies before copying it; ADD charges every archive entry from its header,
    before writing it, so a small archive that claims gigabytes writes nothing past the limit."""

    def __init__(self, disk_bytes: int, files: int) -> None:
        self.disk_bytes = disk_bytes
        self.files = files
        self.written = 0
        self.entries = 0

    def charge(self, size: int, name: str) -> None:
        self.written += size
        self.entries += 1
        if self.written > self.disk_bytes:
            raise LayerLimit(
                f"{name!r} takes the layer past {size_text(self.disk_bytes)} of files (the disk limit "
                "STUDIO_BUILD_DISK_MB sets)", "disk")
        if self.entries > self.files:
            raise LayerLimit(
                f"{name!r} takes the layer past {self.files} files (the limit STUDIO_BUILD_FILES sets)",
                "files")


