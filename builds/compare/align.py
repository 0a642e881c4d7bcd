"""Two builds' steps lined up row by row, so that "the same step" sits on one row even when the
second Dockerfile inserted, removed, reordered or renamed things.

Stages are paired first: by name, then (for renamed or unnamed stages) by how alike their
instructions are, then by position. Within a pair of stages the steps are aligned as a sequence
(difflib's longest matching blocks over normalized instructions); what is left over is paired
with an identical instruction elsewhere in the stage (a step that moved), then, inside a run of
replaced steps, with the most similar step of the same keyword (a step that was edited). Anything
still alone is a gap on the other side.

Pure: steps are plain dicts as the build API returns them (`stage`, `instruction`, `cache_key`,
`status`, ...), nothing here reads a database or a store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import islice
from typing import Any

from builds.engine.verdicts import PENDING

Step = dict[str, Any]

SIMILAR_STAGE = 0.5  # share of instructions two stages must have in common to be paired by content
SIMILAR_STEP = 0.4  # character similarity for two edited steps of one keyword to share a row
EDIT_WINDOW = 8  # later steps weighed as the edited version of a step (edits rarely move far)


@dataclass
class Row:
    """One row of the comparison: a step of each build, or a step and a gap."""

    a: Step | None
    b: Step | None
    # same: the same instruction; changed: edited; moved: the same instruction at another place;
    # removed: only in a; added: only in b.
    kind: str


@dataclass
class _Stage:
    label: str
    steps: list[Step]

    @property
    def named(self) -> bool:
        # The engine labels an unnamed stage by its index: "0", "1", ...
        return not self.label.isdigit()


def normalize(instruction: str, renames: dict[str, str] | None = None) -> str:
    """An instruction as alignment compares it: keyword upper-cased, spaces collapsed, a FROM's
    own stage name dropped, and stage names it refers to (`--from=`, `FROM <stage>`) spelled as
    the other build spells them."""
    words = instruction.split()
    if not words:
        return ""
    keyword, rest = words[0].upper(), words[1:]
    renames = renames or {}
    if keyword == "FROM":
        if len(rest) >= 3 and rest[-2].lower() == "as":
            rest = rest[:-2]
        rest = [renames.get(word.lower(), word) if not word.startswith("--") else word for word in rest]
    rest = [
        "--from=" + renames.get(word[7:].lower(), word[7:]) if word.lower().startswith("--from=") else word
        for word in rest
    ]
    return " ".join([keyword, *rest])


def align(a_steps: Sequence[Step], b_steps: Sequence[Step]) -> list[Row]:
    """Every step of both builds, once, in rows: stages in the first build's order (the second
    build's own stages where they fall), steps in order within each stage."""
    a_stages, b_stages = _stages(a_steps), _stages(b_steps)
    pairs = _pair_stages(a_stages, b_stages)
    renames = {
        b_stages[j].label.lower(): a_stages[i].label.lower()
        for i, j in pairs.items()
        if a_stages[i].named and b_stages[j].named
    }
    rows: list[Row] = []
    for i, j in _merge_order(len(a_stages), len(b_stages), pairs):
        a_side = a_stages[i].steps if i is not None else []
        b_side = b_stages[j].steps if j is not None else []
        rows.extend(_align_steps(a_side, b_side, renames))
    return rows


def _stages(steps: Sequence[Step]) -> list[_Stage]:
    stages: dict[str, _Stage] = {}
    for step in steps:
        label = str(step.get("stage", "0"))
        stages.setdefault(label, _Stage(label, [])).steps.append(step)
    return list(stages.values())


def _pair_stages(a: list[_Stage], b: list[_Stage]) -> dict[int, int]:
    """a's stage index -> b's, for the stages that are one stage in two versions."""
    pairs: dict[int, int] = {}
    b_by_name = {stage.label.lower(): j for j, stage in enumerate(b) if stage.named}
    for i, stage in enumerate(a):
        j = b_by_name.get(stage.label.lower()) if stage.named else None
        if j is not None:
            pairs[i] = j
    # Renamed (or unnamed) stages: the most alike first, as long as they are alike enough.
    left_a = [i for i in range(len(a)) if i not in pairs]
    left_b = [j for j in range(len(b)) if j not in pairs.values()]
    scored = sorted(
        ((_likeness(a[i], b[j]), -abs(i - j), i, j) for i in left_a for j in left_b), reverse=True
    )
    for score, _distance, i, j in scored:
        if score >= SIMILAR_STAGE and i not in pairs and j not in pairs.values():
            pairs[i] = j
    # Whatever is still alone pairs with the stage at the same place, if that one is alone too.
    taken = set(pairs.values())
    for i in range(min(len(a), len(b))):
        if i not in pairs and i not in taken and _likeness(a[i], b[i]) > 0:
            pairs[i] = i
            taken.add(i)
    return pairs


def _likeness(a: _Stage, b: _Stage) -> float:
    return SequenceMatcher(
        None,
        [normalize(s["instruction"]) for s in a.steps],
        [normalize(s["instruction"]) for s in b.steps],
        autojunk=False,
    ).ratio()


def _merge_order(
    a_len: int, b_len: int, pairs: dict[int, int], placed_b: Collection[int] = ()
) -> list[tuple[int | None, int | None]]:
    """Every index of a once, and every index of b not in `placed_b` once, as (i, j), (i, None)
    or (None, j): in a's order, each of b's unpaired items just before the next pair that follows
    it in b. A pair that crosses an earlier one still comes at a's place (a stage that moved)."""
    paired_b = set(pairs.values()) | set(placed_b)
    out: list[tuple[int | None, int | None]] = []
    j = 0
    for i in range(a_len):
        partner = pairs.get(i)
        if partner is None:
            out.append((i, None))
            continue
        while j < partner:
            if j not in paired_b:
                out.append((None, j))
            j += 1
        out.append((i, partner))
        j = max(j, partner + 1)
    out.extend((None, k) for k in range(j, b_len) if k not in paired_b)
    return out


def _align_steps(a: list[Step], b: list[Step], renames: dict[str, str]) -> list[Row]:
    na = [normalize(s["instruction"]) for s in a]
    nb = [normalize(s["instruction"], renames) for s in b]
    matcher = SequenceMatcher(None, na, nb, autojunk=False)
    pairs: dict[int, int] = {}
    kinds: dict[int, str] = {}
    blocks: list[tuple[range, range]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                pairs[i1 + k], kinds[i1 + k] = j1 + k, "same"
        elif tag == "replace":
            blocks.append((range(i1, i2), range(j1, j2)))
    _pair_moved(na, nb, pairs, kinds)
    for a_block, b_block in blocks:
        _pair_edited(a, b, na, nb, a_block, b_block, pairs, kinds)

    in_order = {i: j for i, j in pairs.items() if kinds[i] != "moved"}
    moved_b = {j for i, j in pairs.items() if kinds[i] == "moved"}
    rows: list[Row] = []
    # A moved step is drawn once, at its place in a.
    for i, j in _merge_order(len(a), len(b), in_order, moved_b):
        if i is None:
            assert j is not None
            rows.append(Row(None, b[j], "added"))
        elif j is None:
            moved = pairs.get(i)
            if moved is not None:
                rows.append(Row(a[i], b[moved], "moved"))
            else:
                rows.append(Row(a[i], None, "removed"))
        else:
            rows.append(Row(a[i], b[j], kinds[i]))
    return rows


def _pair_moved(na: list[str], nb: list[str], pairs: dict[int, int], kinds: dict[int, str]) -> None:
    """An instruction left alone on both sides, the same on each: one step that changed place."""
    free_b = [j for j in range(len(nb)) if j not in pairs.values()]
    for i in range(len(na)):
        if i in pairs:
            continue
        j = next((j for j in free_b if nb[j] == na[i]), None)
        if j is not None:
            pairs[i], kinds[i] = j, "moved"
            free_b.remove(j)


def _pair_edited(
    a: list[Step],
    b: list[Step],
    na: list[str],
    nb: list[str],
    a_block: range,
    b_block: range,
    pairs: dict[int, int],
    kinds: dict[int, str],
) -> None:
    """Inside a run of replaced steps, pair each with the most similar later step of the same
    keyword, keeping order; a lone step facing a lone step of its keyword pairs whatever its text.
    Only the next EDIT_WINDOW candidates are weighed, so a Dockerfile rewritten from top to bottom
    costs time in proportion to its length, not to its length squared."""
    free_a = [i for i in a_block if i not in pairs]
    taken = set(pairs.values())
    free_b = [j for j in b_block if j not in taken]
    lone = len(free_a) == len(free_b) == 1
    keywords = {j: _keyword(b[j]) for j in free_b}
    start = 0  # free_b[start:] are the steps after the last one paired
    for i in free_a:
        keyword = _keyword(a[i])
        candidates = list(islice((j for j in free_b[start:] if keywords[j] == keyword), EDIT_WINDOW))
        best: tuple[float, int] | None = None
        for j in candidates:
            matcher = SequenceMatcher(None, na[i], nb[j], autojunk=False)
            floor = -1.0 if lone else max(SIMILAR_STEP, best[0] if best else 0.0)
            if matcher.quick_ratio() < floor:
                continue  # an upper bound of the ratio: this one cannot do better
            score = matcher.ratio()
            if score >= floor and (best is None or score > best[0]):
                best = (score, j)
        if best is not None:
            pairs[i], kinds[i] = best[1], "changed"
            start = free_b.index(best[1]) + 1


def _keyword(step: Step) -> str:
    keyword = step.get("keyword") or step["instruction"].split(" ", 1)[0]
    return str(keyword).upper()


# -- what a row says ---------------------------------------------------------------------------------


def keys_equal(row: Row) -> bool | None:
    """Whether both steps have the same cache key; None when a side has no step or no key
    (a metadata step such as ENV, a step that failed or did not run)."""
    if row.a is None or row.b is None:
        return None
    ka, kb = row.a.get("cache_key"), row.b.get("cache_key")
    if not ka or not kb:
        return None
    return bool(ka == kb)


def parted(row: Row) -> bool:
    """Whether the two builds went different ways at this row: a step on one side only,
    different cache keys, or, for steps without a key, a different instruction or outcome.
    A step still to come in a running build has parted from nothing yet."""
    if row.a is None or row.b is None:
        return True
    if PENDING in (row.a.get("status"), row.b.get("status")):
        return False  # not known yet: that step of a running build has not finished
    same = keys_equal(row)
    if same is not None:
        return not same
    return row.kind != "same" or row.a.get("status") != row.b.get("status")


def first_parting(rows: Sequence[Row], where: Callable[[Row], bool] = parted) -> int | None:
    return next((n for n, row in enumerate(rows) if where(row)), None)
