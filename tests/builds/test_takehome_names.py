"""The names an image leaves the studio under: the operator's push registry read strictly at
start-up, a person's repository and tag checked by Docker's grammar, and a hostile project name
made into a safe file name and image name."""

from __future__ import annotations

import pytest

from builds.takehome.names import BadName, PushRegistry, archive_names, check_destination, parse_push_registry


@pytest.mark.parametrize(("text", "host", "prefix"), [
    ("127.0.0.1:5000/studio", "127.0.0.1:5000", "studio"),
    ("registry.example/studio/class-a/", "registry.example", "studio/class-a"),
    ("localhost:5000", "localhost:5000", ""),
    ("[::1]:5000/x", "[::1]:5000", "x"),
])
def test_the_push_registry_setting_is_read(text: str, host: str, prefix: str) -> None:
    assert parse_push_registry(text) == PushRegistry(host, prefix)


@pytest.mark.parametrize("text", ["studio", "host:port/x", "reg.example/Upper", "reg.example/a..b",
                                  "http://reg.example/x", "reg.example:5000/x y", ""])
def test_a_push_registry_setting_that_is_no_registry_stops_start_up(text: str) -> None:
    with pytest.raises(ValueError):
        parse_push_registry(text)


def test_a_destination_stays_under_the_operators_prefix() -> None:
    registry = PushRegistry("reg.example:5000", "studio")
    pushed = check_destination(registry, "evil.example/app", "v1")
    assert pushed == "reg.example:5000/studio/evil.example/app:v1"
    with pytest.raises(BadName) as refused:
        check_destination(PushRegistry("reg.example:5000", "p" * 150), "a" * 110, "t")
    assert refused.value.field == "repository"


@pytest.mark.parametrize(("name", "loads_as", "file"), [
    ("My App", "studio/my-app:build-3", "my-app-build-3.tar"),
    ('../../"; rm -rf /\r\n', "studio/rm-rf:build-3", "rm-rf-build-3.tar"),
    ("日本語", "studio/project-9:build-3", "project-9-build-3.tar"),
    ("Ünïcödé" * 20, "studio/" + ("unicode" * 7)[:48] + ":build-3", ("unicode" * 7)[:48] + "-build-3.tar"),
])
def test_a_hostile_project_name_makes_a_safe_archive_name(name: str, loads_as: str, file: str) -> None:
    assert archive_names(name, 9, 3) == (loads_as, file)
