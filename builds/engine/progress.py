"""`--progress plain`: a readable build log in BuildKit's manner, with every rebuilt step's reason."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .verdicts import VERDICT_WORDS, VERDICTS, tally


class PlainProgress:
    """A sink that prints events as they come."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.steps: dict[int, dict[str, Any]] = {}
        self.total = 0

    def __call__(self, event: dict[str, Any]) -> None:
        handler = getattr(self, "_" + event["type"].replace(".", "_"), None)
        if handler is not None:
            handler(event)
        self.out.flush()

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")

    def _build_started(self, event: dict[str, Any]) -> None:
        self.steps = {s["step"]: s for s in event["steps"]}
        self.total = len(self.steps)

    def _label(self, number: int) -> str:
        step = self.steps.get(number, {})
        return f"#{number} [{step.get('stage', '?')} {number}/{self.total}] {step.get('instruction', '')}"

    def _step_started(self, event: dict[str, Any]) -> None:
        self._print(self._label(event["step"]))

    def _step_log(self, event: dict[str, Any]) -> None:
        for line in event["text"].splitlines():
            self._print(f"#{event['step']} {line}")

    def _step_finished(self, event: dict[str, Any]) -> None:
        number, status = event["step"], event["status"]
        if status in ("skipped", "metadata"):
            return  # BuildKit prints neither a step that did not run nor a configuration change
        if status == "cached":
            if event.get("keyword") not in ("FROM",):
                self._print(f"#{number} CACHED")
            return
        if status == "cancelled":
            self._print(f"#{number} CANCELED")
            return
        reason = event.get("reason") or {}
        if reason.get("message"):
            self._print(f"#{number} why: {reason['message']}")
        if status == "failed":
            error = event.get("error") or {}
            self._print(f"#{number} ERROR: {error.get('message', 'failed')}")
            return
        layer = event.get("layer")
        size = f", layer {_size(layer['size'])}" if layer else ""
        self._print(f"#{number} DONE {event['duration_ms'] / 1000:.1f}s{size}")

    def _build_finished(self, event: dict[str, Any]) -> None:
        seconds = event["duration_ms"] / 1000
        summary = f"{counts_text(event.get('counts') or tally([]))}, {seconds:.2f}s"
        if event["status"] == "succeeded":
            image = event["image"]
            tag = f" tagged {image['tag']}" if image.get("tag") else ""
            made = f"{image['digest'][:19]} ({_size(image['size'])}, {image['layers']} layers)"
            self._print(f"built {made}{tag}: {summary}")
        else:
            error = event.get("error") or {}
            where = f"line {error['line']}: " if error.get("line") else ""
            self._print(f"build {event['status']}: {where}{error.get('message', '')} ({summary})")

    def _image_pull(self, event: dict[str, Any]) -> None:
        self._transfer(event, {
            "resolved": "pulling {image} {digest} ({layers} layers, {total})",
            "exists": "{layer} already in the store",
            "extracting": "{layer} downloaded {total}, unpacking",
            "done": "{layer} done",
        }, "pulled {image}: {current} fetched")

    def _image_push(self, event: dict[str, Any]) -> None:
        self._transfer(event, {
            "resolved": "pushing to {image} ({layers} layers, {total})",
            "exists": "{layer} {total}: already there, skipped",
            "mounted": "{layer} {total}: mounted from {source}",
            "pushed": "{layer} {total}: uploaded",
        }, "pushed {image} {digest}: {current} uploaded")

    def _transfer(self, event: dict[str, Any], lines: dict[str, str], finished: str) -> None:
        """One line per layer's change of state (byte counts in between are left out)."""
        layer = event.get("layer")
        template = finished if layer is None and event["status"] == "done" else lines.get(event["status"])
        if template is None:
            return
        values = {**event, "layer": (layer or "")[7:19], "current": _size(event["current"]),
                  "total": _size(event["total"])}
        prefix = f"#{event['step']} " if event.get("step") else ""
        self._print(prefix + template.format_map(values))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{n}B"


def counts_text(counts: dict[str, int]) -> str:
    """ "4 built, 1 cached, 2 metadata only": the verdicts a build had, in one order everywhere
    (frontend/src/verdicts.ts says it the same way)."""
    said = [f"{counts.get(v, 0)} {VERDICT_WORDS[v]}" for v in VERDICTS if counts.get(v, 0)]
    return ", ".join(said) or "no steps"


def print_prediction(plan: dict[str, Any], out: TextIO) -> None:
    """`build --dry-run`: each step as a build would print it, with what the build would do."""
    steps = plan["steps"]
    total = len(steps)
    counts = {"cached": 0, "built": 0, "skipped": 0}
    for step in steps:
        number, prediction = step["step"], step["prediction"]
        out.write(f"#{number} [{step['stage']} {number}/{total}] {step['instruction']}\n")
        reason = (step.get("reason") or {}).get("message", "")
        if prediction == "built":
            maybe = "" if step.get("certain", True) else " (perhaps)"
            out.write(f"#{number} WOULD REBUILD{maybe}: {reason}\n")
        elif prediction == "skipped":
            out.write(f"#{number} SKIPPED: {reason}\n")
        elif prediction == "cached" and step["keyword"] != "FROM":
            out.write(f"#{number} CACHED\n")
        if step["keyword"] != "FROM" and prediction in counts:
            counts[prediction] += 1
    out.write(
        f"dry run, nothing built: {counts['cached']} cached, {counts['built']} would be rebuilt, "
        f"{counts['skipped']} skipped\n"
    )
