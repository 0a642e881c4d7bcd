"""Web builds reach registries on public addresses only, unless the operator lists one: a
stranger's `FROM 127.0.0.1:<port>/x` must not make the worker talk to its own machine. The
command line keeps reaching any registry."""
# ruff: noqa: F811 (the fixtures are imported, then named as arguments)

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import requests

from builds.engine.registry.client import guarded_session
from builds.engine.registry.push import push
from builds.engine.registry.settings import RegistrySettings
from builds.engine.store import Store
from tests.engine.registry_server import RegistryServer, registry  # noqa: F401

from .conftest import BASE

LOOPBACK = RegistrySettings()


def _requests_seen(server: RegistryServer) -> int:
    return sum(1 for line in server.log.read_text().splitlines() if "HTTP/1.1" in line)


@pytest.fixture
def pushed(registry: RegistryServer, store: Store) -> RegistryServer:
    push(store, BASE, f"{registry.host}/base:1", settings=LOOPBACK)
    return registry


@pytest.mark.parametrize("spelled", ["127.0.0.1", "localhost"])
def test_a_web_build_does_not_reach_a_registry_on_loopback(
    pushed: RegistryServer, project: Any, tmp_path: Path, spelled: str
) -> None:
    port = pushed.host.rsplit(":", 1)[1]
    proj = project({"Dockerfile": f"FROM {spelled}:{port}/base:1\n"})
    proj.store = Store(tmp_path / "fresh")
    before = _requests_seen(pushed)
    built = proj.build(private_registries=False)
    assert built.result.exit_code == 2
    message = built.finished["error"]["message"]
    # "localhost" is refused for what it resolves to, not for its name.
    assert "loopback address (127.0.0.1)" in message and "STUDIO_REGISTRY_ALLOW_PRIVATE" in message
    assert built.finished["error"]["line"] == 1
    assert _requests_seen(pushed) == before  # not one request reached it


def test_the_operator_can_list_a_private_registry(
    pushed: RegistryServer, project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_REGISTRY_ALLOW_PRIVATE", pushed.host)
    proj = project({"Dockerfile": f"FROM {pushed.host}/base:1\n"})
    proj.store = Store(tmp_path / "fresh")
    assert proj.build(private_registries=False).result.status == "succeeded"


def test_the_command_line_still_reaches_loopback(
    pushed: RegistryServer, project: Any, tmp_path: Path
) -> None:
    proj = project({"Dockerfile": f"FROM {pushed.host}/base:1\n"})
    proj.store = Store(tmp_path / "fresh")
    assert proj.build().result.status == "succeeded"


def test_every_connection_of_a_pull_is_checked_not_only_the_first(pushed: RegistryServer) -> None:
    """A public registry's token realm or redirect naming a loopback address goes through the
    same session, whose every connection is checked."""
    settings = dataclasses.replace(LOOPBACK, private_ok=False)
    before = _requests_seen(pushed)
    with guarded_session(settings) as session, pytest.raises(requests.exceptions.ConnectionError) as caught:
        session.get(f"http://{pushed.host}/v2/", timeout=5)
    assert "loopback address" in str(caught.value)
    assert _requests_seen(pushed) == before
