"""Each existing step's event, made from the columns it was unpacked into, as the API showed it
(builds.selectors.step_json before this migration); and, going back, the columns from the event."""

from __future__ import annotations

from typing import Any

from django.db import migrations

# The columns an event's fields were kept in (the rest went to `extra`).
COLUMNS = {
    "step": "number", "stage": "stage", "instruction": "instruction", "line": "line", "keyword": "keyword",
    "status": "status", "cached": "cached", "cache_key": "cache_key", "reason": "reason", "layer": "layer",
    "duration_ms": "duration_ms", "error": "error",
}


def event_of(step: Any) -> dict[str, Any]:
    return {
        "step": step.number,
        "stage": step.stage,
        "instruction": step.instruction,
        "line": step.line,
        "keyword": step.keyword,
        "status": step.status,
        "cached": step.cached,
        "cache_key": step.cache_key,
        "reason": step.reason,
        "layer": step.layer,
        "duration_ms": step.duration_ms,
        **({"error": step.error} if step.error is not None else {}),
        **step.extra,
    }


def to_events(apps: Any, schema_editor: Any) -> None:
    Step = apps.get_model("builds", "Step")
    db = schema_editor.connection.alias
    for step in Step.objects.using(db).iterator(chunk_size=500):
        step.event = event_of(step)
        step.save(update_fields=["event"])


def to_columns(apps: Any, schema_editor: Any) -> None:
    Step = apps.get_model("builds", "Step")
    db = schema_editor.connection.alias
    for step in Step.objects.using(db).iterator(chunk_size=500):
        event = step.event
        step.stage = event.get("stage") or ""
        step.instruction = event.get("instruction") or ""
        step.line = event.get("line")
        step.status = event.get("status") or ""
        step.cached = event.get("cached") is True
        step.cache_key = event.get("cache_key")
        step.reason = event.get("reason")
        step.layer = event.get("layer")
        step.duration_ms = int(event.get("duration_ms") or 0)
        step.error = event.get("error")
        step.extra = {k: v for k, v in event.items() if k not in COLUMNS}
        step.save()


class Migration(migrations.Migration):

    dependencies = [
        ("builds", "0004_step_event"),
    ]

    operations = [
        migrations.RunPython(to_events, to_columns),
    ]
