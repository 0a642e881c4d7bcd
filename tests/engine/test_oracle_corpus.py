"""The project's own BuildKit recordings (tests/engine/oracle/scenarios, made by generate.py from
a real BuildKit, never by hand), replayed against the engine's command line with the shared
oracle's runner: every scenario must agree step for step.

KNOWN_DIFFERENCES lists, with the reason, the scenarios where the engine does not agree yet. Each
is a strict expected failure: one that starts agreeing fails the run until it leaves the list,
so the list only ever shrinks honestly.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
RUNNER = PROJECT.parent / "shared" / "oracle" / "run_oracle.py"
SCENARIOS = Path(__file__).resolve().parent / "oracle" / "scenarios"

KNOWN_DIFFERENCES = {
    "103-copy-chown-name-vs-id": "COPY --chown is keyed by its text; BuildKit by the ids it resolves to",
    "127-copy-missing-source": "BuildKit does not cache a RUN that ran beside a COPY whose source was "
                               "missing; the engine keeps it",
    "133-run-mount-secret-absent": "RUN --mount=type=secret is refused: the engine has no secrets to give",
    "134-run-network-none": "Docker 20.10's frontend refuses RUN --network without the labs syntax; "
                            "later BuildKit accepts it, as the engine does",
    "147-user-before-workdir": "a USER unknown to the image fails at WORKDIR in BuildKit, before the RUN "
                               "after it here",
}


def _runner() -> Any:
    spec = importlib.util.spec_from_file_location("run_oracle", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases() -> list[Any]:
    if not RUNNER.exists():
        return []
    cases = []
    for path in sorted(SCENARIOS.glob("*.json")):
        marks = []
        if path.stem in KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(reason=KNOWN_DIFFERENCES[path.stem], strict=True))
        cases.append(pytest.param(path.stem, marks=marks, id=path.stem))
    return cases


def test_every_known_difference_names_a_recorded_scenario() -> None:
    recorded = {path.stem for path in SCENARIOS.glob("*.json")}
    assert len(recorded) >= 100
    assert set(KNOWN_DIFFERENCES) <= recorded


@pytest.mark.skipif(not RUNNER.exists(), reason="../shared/oracle is not here")
@pytest.mark.parametrize("scenario", _cases())
def test_the_engine_agrees_with_buildkit_on(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    runner = _runner()
    found = runner.load_scenarios(str(SCENARIOS), [scenario])
    assert [s["name"] for s in found] == [scenario]
    args = argparse.Namespace(project=str(PROJECT), timeout=120, fail_under=None)
    assert runner.cmd_project(found, args) == 0
    report = capsys.readouterr().out
    # The runner prints a line under the scenario for each step that differs or is missing, and
    # each build whose outcome differs (BuildKit's failed, the engine's did not, or the other way
    # round). An `extra` line (a step the engine reports that BuildKit printed nothing for, such
    # as `WORKDIR /`) is no verdict, as in the runner's own count.
    verdict = next(line for line in report.splitlines() if scenario in line)
    # Nor is "exit 2, but BuildKit's build failed": both builds failed, and the command line's
    # contract gives exit 2 where the input itself is wrong (a COPY source not in the context).
    no_verdict = ("extra", "exit 2, but BuildKit's build failed")
    lines = [line.split(":", 1) for line in report.splitlines() if line.startswith("  build ")]
    differences = [what for _, what in lines if not what.lstrip().startswith(no_verdict)]
    assert verdict.startswith("ok") and not differences, report
