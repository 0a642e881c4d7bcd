"""A push reported as events (as the worker pushing from the page reports it): every layer's
status, the repository a mounted layer came from included."""
# ruff: noqa: F811 (the registry fixture is imported, then named as an argument)

from __future__ import annotations

from typing import Any

from builds.engine.events import TransferEvent
from builds.engine.registry.push import push
from builds.engine.registry.settings import RegistrySettings
from tests.engine.registry_server import RegistryServer, registry  # noqa: F401

from .conftest import BASE


def test_a_reported_push_to_a_second_repository_mounts_every_layer(
    project: Any, registry: RegistryServer
) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo two > /two\n"})
    assert proj.build(tag="app:1").result.status == "succeeded"
    first: list[TransferEvent] = []
    push(proj.store, "app:1", f"{registry.host}/one:1", settings=RegistrySettings(), report=first.append)
    assert [e.status for e in first if e.layer and e.status != "uploading"] == ["pushed", "pushed"]

    second: list[TransferEvent] = []
    push(proj.store, "app:1", f"{registry.host}/two:1", settings=RegistrySettings(), report=second.append)
    placed = [e for e in second if e.layer]
    assert [e.status for e in placed] == ["mounted", "mounted"]
    assert {e.source for e in placed} == {f"{registry.host}/one"}
