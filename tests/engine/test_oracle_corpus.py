"""The project's own BuildKit scenarios (tests/engine/oracle/scenarios/), replayed against the
engine's command line exactly as the shared oracle's runner replays its own: every step must get
BuildKit's verdict.

Two lists keep the exceptions honest:
- a scenario's `newer_buildkit` entry replaces a build's recorded 20.10 outcome with the one a newer
  BuildKit gives, where a newer release changed the rule (the engine follows the newer rule);
- oracle/known_differences.json lists differences the engine still has, each with its reason. A
  listed difference that no longer shows fails the test too, so that the list stays true.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
CORPUS = HERE / "oracle" / "scenarios"
KNOWN = HERE / "oracle" / "known_differences.json"
RUNNER = PROJECT / ".." / "shared" / "oracle" / "run_oracle.py"
TIMEOUT = 300


def _runner() -> Any:
    spec = importlib.util.spec_from_file_location("run_oracle", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _known() -> dict[str, Any]:
    return json.loads(KNOWN.read_text()) if KNOWN.exists() else {}


SCENARIOS = sorted(p.name for p in CORPUS.glob("*.json"))


def expected_build(scn: dict[str, Any], number: int, build: dict[str, Any]) -> dict[str, Any]:
    """The build's recorded verdicts, or a newer BuildKit's where the scenario documents one."""
    newer = (scn.get("newer_buildkit") or {}).get("builds", {}).get(str(number))
    return {**build, **newer} if newer else build


def replay(oracle: Any, scn: dict[str, Any], work: Path) -> list[str]:
    """Every difference between the engine and the expected verdicts, one line each."""
    store = work / "store"
    store.mkdir()
    rc, _, msg = oracle.project_cli(str(PROJECT), str(store), "import", oracle.BASE_TAR, oracle.BASE_IMAGE,
                                    timeout=TIMEOUT)
    assert rc == 0, msg

    def import_images(specs: list[dict[str, Any]]) -> None:
        for spec in specs:
            tar = oracle.make_image_tar(spec, str(work / "image.tar"))
            rc, _, msg = oracle.project_cli(str(PROJECT), str(store), "import", tar, spec["name"],
                                            timeout=TIMEOUT)
            assert rc == 0, msg

    import_images(scn.get("images", []))
    context = oracle.Context(str(work / "context"))
    lines: list[str] = []
    for number, build in enumerate(scn["builds"], 1):
        import_images(build.get("images", []))
        context.apply(build, number)
        rc, steps, msg = oracle.project_cli(str(PROJECT), str(store), "build", context.root, build,
                                            timeout=TIMEOUT)
        # A `metadata` row is an instruction that made nothing and has no verdict (ENV, or a
        # `WORKDIR /`); BuildKit prints no step for it. A step BuildKit ran that the engine
        # reported as metadata still shows, as missing.
        steps = [step for step in steps if step.get("status") != "metadata"]
        want = expected_build(scn, number, build)
        # A build BuildKit failed may fail here with exit 1 (a step failed) or 2 (the Dockerfile or
        # context is at fault, found before any step ran): both are a failed build.
        outcome = "succeeded" if rc == 0 else "failed"
        if outcome != want.get("outcome", "succeeded"):
            lines.append(f"build {number}: outcome {outcome}, expected {want.get('outcome')}: "
                         f"{msg.strip()[-300:]}")
        _, _, diffs = oracle.compare_build(want, steps)
        lines += [f"build {number}: {d}" for d in diffs]
    return lines


@pytest.mark.skipif(not RUNNER.exists(), reason="../shared/oracle is not here")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_engine_agrees_with_buildkit(scenario: str, tmp_path: Path) -> None:
    oracle = _runner()
    (scn,) = oracle.load_scenarios(str(CORPUS), [scenario])
    assert all("expect" in b for b in scn["builds"]), f"{scenario} was never recorded"
    differences = replay(oracle, scn, tmp_path)
    known = _known().get(scn["name"], {}).get("differences", [])
    assert sorted(differences) == sorted(known), (
        "differences from BuildKit:\n  " + "\n  ".join(differences or ["(none)"])
        + "\nlisted as known:\n  " + "\n  ".join(known or ["(none)"])
    )


def test_known_differences_name_real_scenarios() -> None:
    names = {json.loads((CORPUS / s).read_text())["name"] for s in SCENARIOS}
    for name, entry in _known().items():
        assert name in names, name
        assert entry.get("reason"), f"{name}: a known difference needs its reason"


def test_corpus_is_large_and_recorded() -> None:
    assert len(SCENARIOS) >= 80
    for s in SCENARIOS:
        scn = json.loads((CORPUS / s).read_text())
        newer = scn.get("newer_buildkit")
        if newer:
            assert newer.get("why"), f"{s}: a newer rule needs its explanation"
