"""Why a step was not served from the cache: a machine-readable code plus a sentence a student
understands, found by comparing the step's cache inputs with the nearest earlier build of the
same step on the same parent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import msgspec

from .printable import printable

MAX_NAMES = 20  # file names listed per kind of change; the counts are always complete


# -- the reasons: one class per code, each with the details a page shows for it -----------------
# `code` is the tag; every other field is declared in the order it goes on the wire. They are
# part of `step.finished` (and of a prediction), so the events' schema enumerates them.


class _Reason(msgspec.Struct, kw_only=True, tag_field="code", forbid_unknown_fields=True):
    pass


class NoCache(_Reason, tag="no_cache", kw_only=True):
    message: str


class ParentRebuilt(_Reason, tag="parent_rebuilt", kw_only=True):
    message: str
    parent_step: int  # the step right below
    cause_step: int  # the rebuilt step the chain of rebuilds started from


class BaseChanged(_Reason, tag="base_changed", kw_only=True):
    message: str
    old: str
    new: str


class SinceBuild(TypedDict):
    build: int  # the project's build before this one
    files: list[str]  # the files whose content or mode changed, were added or removed
    build_args: list[str]  # the build arguments whose value changed


class FirstBuild(_Reason, tag="first_build", kw_only=True):
    message: str
    # The studio's: what the person changed since their previous build, when the build's cache
    # scope holds nothing to compare with (a class's new shared cache); the engine never sets it.
    since_build: SinceBuild | msgspec.UnsetType = msgspec.UNSET


class NewStep(_Reason, tag="new_step", kw_only=True):
    message: str
    after: str  # the step below it, which no earlier build went on from


class InstructionChanged(_Reason, tag="instruction_changed", kw_only=True):
    message: str
    old: str | None
    new: str


class StepInserted(_Reason, tag="step_inserted", kw_only=True):
    message: str
    next: str  # the step the earlier build went straight on to


class StepRemoved(_Reason, tag="step_removed", kw_only=True):
    message: str
    removed: str


class SettingChange(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    old: Any
    new: Any


class SettingChanged(_Reason, tag="setting_changed", kw_only=True):
    message: str
    changes: list[SettingChange]


class FileCounts(msgspec.Struct, forbid_unknown_fields=True):
    added: int
    removed: int
    modified: int


class FilesChanged(_Reason, tag="files_changed", kw_only=True):
    message: str
    from_: str | None = msgspec.field(name="from")  # the stage copied from; null: the build context
    added: list[str]  # at most MAX_NAMES of each; the counts are complete
    removed: list[str]
    modified: list[str]
    counts: FileCounts


class MountFilesChanged(_Reason, tag="mount_files_changed", kw_only=True):
    message: str
    targets: list[str]


class MountsChanged(_Reason, tag="mounts_changed", kw_only=True):
    message: str
    old: list[dict[str, Any]]
    new: list[dict[str, Any]]


class VariableChange(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    old: str | None  # null: unset
    new: str | None
    arg: bool  # a build argument (ARG), not an ENV


class EnvChanged(_Reason, tag="env_changed", kw_only=True):
    message: str
    changes: list[VariableChange]  # empty: the same values, set in another order


class BuildArgChanged(_Reason, tag="build_arg_changed", kw_only=True):
    message: str
    changes: list[VariableChange]


class SameStep(_Reason, tag="same_step", kw_only=True):
    step: int  # the step of this build that ran it
    message: str


class SourceRebuilt(_Reason, tag="source_rebuilt", kw_only=True):
    """A prediction's: the step reads files from a stage this build rebuilds first."""

    message: str
    from_: str = msgspec.field(name="from")
    cause_step: int | None


class NotRun(_Reason, tag="not_run", kw_only=True):
    """A skipped step's: the build stopped (failed or was cancelled) before it."""

    message: str


class NotNeeded(_Reason, tag="not_needed", kw_only=True):
    """A skipped step's: the target stage does not need its stage."""

    message: str


Reason = (
    NoCache | ParentRebuilt | BaseChanged | FirstBuild | NewStep | InstructionChanged | StepInserted
    | StepRemoved | SettingChanged | FilesChanged | MountFilesChanged | MountsChanged | EnvChanged
    | BuildArgChanged | SameStep | SourceRebuilt | NotRun | NotNeeded
)


@dataclass
class Miss:
    """What is known about a step that missed the cache."""

    step: int
    keyword: str
    instruction: str
    inputs: dict[str, Any]
    notes: dict[str, Any]
    manifest: Callable[[], dict[str, str]] | None
    siblings: list[dict[str, Any]]  # earlier records built on the same parent, oldest first
    load_manifest: Callable[[str], dict[str, str]]
    later: list[str] = field(default_factory=list)  # the texts of the steps after it in its stage
    # The earlier records built on a key (as `siblings` are on the parent's).
    children: Callable[[str], list[dict[str, Any]]] = lambda key: []


def no_cache() -> Reason:
    return NoCache(message="Rebuilt because the build ran with --no-cache.")


def parent_rebuilt(*, parent_step: int, parent_line: int, parent_text: str, cause_step: int) -> Reason:
    return ParentRebuilt(
        message=(
            f"Rebuilt because the layer below it (line {parent_line}: {parent_text}) was rebuilt. "
            "Each layer is stacked on the one before, so a rebuilt layer invalidates every layer above it."
        ),
        parent_step=parent_step,
        cause_step=cause_step,
    )


def base_changed(*, old: str, new: str) -> Reason:
    return BaseChanged(
        message=f"Rebuilt because the base image changed from {old} to {new}; "
        "every layer sits on top of it.",
        old=old,
        new=new,
    )


def first_build(*, after: str | None) -> Reason:
    if after is None:
        return FirstBuild(
            message="Built for the first time: no earlier build of this step on this base is in the cache."
        )
    return NewStep(
        message=f"Built for the first time: no earlier build ran a step on top of {after}.", after=after
    )


def compare(miss: Miss) -> Reason | None:
    """The difference to the nearest earlier sibling, or None when there is no sibling."""
    if not miss.siblings:
        return None
    same_text = [r for r in miss.siblings if r.get("instruction") == miss.instruction]
    if not same_text:
        shifted = _inserted_or_removed(miss)
        if shifted is not None:
            return shifted
        old = miss.siblings[-1]
        same_kind = [r for r in miss.siblings if r.get("keyword") == miss.keyword]
        old = same_kind[-1] if same_kind else old
        return InstructionChanged(
            message=f"Rebuilt because the instruction changed: it was `{old.get('instruction')}`, "
            f"now it is `{miss.instruction}`.",
            old=old.get("instruction"),
            new=miss.instruction,
        )
    return _input_difference(miss, same_text[-1])


def _inserted_or_removed(miss: Miss) -> Reason | None:
    """A step added or taken out below where the earlier build went on. BuildKit keys a step by
    its parent's key, so after either the steps above rebuild; an inserted step is new, and
    the step that now sits where a removed one was rebuilds on a different layer."""
    old = miss.siblings[-1]
    old_text = old.get("instruction")
    if old_text is None:
        return None
    after_old = miss.children(str(old.get("key")))
    went_on_to_this = any(r.get("instruction") == miss.instruction for r in after_old)
    comes_later = old_text in miss.later
    if comes_later and not went_on_to_this:
        return StepInserted(
            message="Built because it is a new step inserted here: the earlier build went "
            f"straight on to `{old_text}`.",
            next=old_text,
        )
    if went_on_to_this and not comes_later:
        return StepRemoved(
            message=f"Rebuilt because the step below it changed: `{old_text}` was removed, so "
            "this step now sits on a different layer, and a layer is cached only on the same one.",
            removed=old_text,
        )
    return None  # moved, or edited: the instruction changed


def _input_difference(miss: Miss, old: dict[str, Any]) -> Reason:
    old_inputs: dict[str, Any] = old.get("inputs", {})
    if old_inputs.get("sources") != miss.inputs.get("sources"):
        return _files_changed(miss, old)
    if old_inputs.get("env") != miss.inputs.get("env"):
        return _env_changed(miss, old)
    if old_inputs.get("mounts") != miss.inputs.get("mounts"):
        return _mounts_changed(old_inputs.get("mounts") or [], miss.inputs.get("mounts") or [])
    changed = [
        SettingChange(name, old_inputs.get(name), miss.inputs.get(name))
        for name in sorted(set(old_inputs) | set(miss.inputs))
        if old_inputs.get(name) != miss.inputs.get(name)
    ]
    words = ", ".join(f"{c.name} ({c.old!r} → {c.new!r})" for c in changed) or "its inputs"
    return SettingChanged(message=f"Rebuilt because {words} changed.", changes=changed)


def _files_changed(miss: Miss, old: dict[str, Any]) -> Reason:
    new_files = printable(miss.manifest()) if miss.manifest else {}
    digest = old.get("notes", {}).get("manifest")
    old_files = miss.load_manifest(digest) if digest else {}
    added = sorted(set(new_files) - set(old_files))
    removed = sorted(set(old_files) - set(new_files))
    modified = sorted(p for p in set(new_files) & set(old_files) if new_files[p] != old_files[p])
    source = miss.notes.get("from")
    where = f"stage {source}" if source else "the build context"
    parts = []
    for label, names in (("changed", modified), ("added", added), ("removed", removed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{shown} {'was' if len(names) == 1 else 'were'} {label}")
    what = "; ".join(parts) or "the copied files changed"
    return FilesChanged(
        message=f"Rebuilt because files it copies from {where} changed: {what}.",
        from_=source,
        added=added[:MAX_NAMES],
        removed=removed[:MAX_NAMES],
        modified=modified[:MAX_NAMES],
        counts=FileCounts(added=len(added), removed=len(removed), modified=len(modified)),
    )


def _mounts_changed(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> Reason:
    """RUN --mount: only the content of bound files changed, or the mounts themselves."""
    def options(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if k != "content"} for m in mounts]

    if options(old) == options(new):
        targets = [m["target"] for m, was in zip(new, old, strict=True)
                   if m.get("content") != was.get("content")]
        return MountFilesChanged(
            message=f"Rebuilt because the files it mounts at {', '.join(targets)} changed.", targets=targets
        )
    return MountsChanged(message="Rebuilt because its --mount options changed.", old=old, new=new)


def _env_changed(miss: Miss, old: dict[str, Any]) -> Reason:
    def as_dict(pairs: list[str]) -> dict[str, str]:
        return dict(pair.split("=", 1) for pair in pairs)

    before = as_dict(old.get("inputs", {}).get("env", []))
    after = as_dict(miss.inputs.get("env", []))
    arg_names = set(miss.notes.get("arg_names", [])) | set(old.get("notes", {}).get("arg_names", []))
    changes = [
        VariableChange(name, before.get(name), after.get(name), name in arg_names)
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
    if not changes:  # the same values, set in another order
        order = ", ".join(after)
        return EnvChanged(
            message=f"Rebuilt because the environment is set in another order ({order}). A RUN is "
                    "keyed by its environment as a list, in the order it was set.",
            changes=[],
        )
    kind: type[EnvChanged] | type[BuildArgChanged]
    if all(c.arg for c in changes):
        kind, noun = BuildArgChanged, "build argument"
        tail = "A RUN sees every build argument its stage declares, so a new value rebuilds it."
    else:
        kind, noun = EnvChanged, "environment variable"
        tail = "A RUN is keyed by its whole environment, whether the command reads the variable or not."
    described = ", ".join(f"{c.name} ({_show(c.old)} → {_show(c.new)})" for c in changes)
    return kind(message=f"Rebuilt because the {noun} {described} changed. {tail}", changes=changes)


def _show(value: object) -> str:
    return "unset" if value is None else repr(value)


def same_step(first: int) -> Reason:
    return SameStep(step=first, message=f"The same step as step {first}, built once in this build.")


def source_rebuilt(*, keyword: str, stage: str, cause_step: int | None) -> Reason:
    return SourceRebuilt(
        message=f"Probably rebuilt: it {'mounts' if keyword == 'RUN' else 'copies'} files from stage "
        f"{stage}, which this build rebuilds first. Should those files come out exactly the same, it is "
        "served from the cache.",
        from_=stage,
        cause_step=cause_step,
    )


def not_run(stopped: str) -> Reason:
    return NotRun(message=f"Not run: {stopped}.")


def not_needed(*, target: str, stage: str) -> Reason:
    return NotNeeded(message=f"Not built: the target stage {target} does not need stage {stage}.")
