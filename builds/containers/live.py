"""A container's channel group: its output as it comes, and its end with the writable layer."""

from __future__ import annotations

from typing import Any

from builds.live import group_send


def container_group(container_id: int) -> str:
    return f"container.{container_id}"


def publish(container_id: int, event: dict[str, Any]) -> bool:
    """Send an event to the pages watching the container ({"type": "container.log", "stream",
    "text", "offset"} or {"type": "container.layer", "container": {...}}). Never raises."""
    return group_send(container_group(container_id), {"type": "container.event", "event": event})
