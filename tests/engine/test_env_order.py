"""ENV in another order is another RUN, as in BuildKit (scenario 156 of the project's corpus), and
the reason says so rather than naming no change."""

from __future__ import annotations

from collections.abc import Callable

from .conftest import BASE, Project


def test_the_same_env_in_another_order_rebuilds_the_run_and_says_why(project: Callable[..., Project]) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nENV A=1\nENV B=2\nRUN env > /e\n"})
    assert proj.build().step("RUN")["status"] == "built"
    assert proj.build().step("RUN")["status"] == "cached"
    proj.write({"Dockerfile": f"FROM {BASE}\nENV B=2\nENV A=1\nRUN env > /e\n"})
    run = proj.build().step("RUN")
    assert run["status"] == "built"
    assert run["reason"]["code"] == "env_changed"
    assert "another order (PATH, B, A)" in run["reason"]["message"]
