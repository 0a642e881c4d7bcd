"""Image references read as Docker reads them, and the registry settings read from the
environment."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from builds.engine.errors import InputError
from builds.engine.reference import local_name, parse_reference
from builds.engine.registry.settings import RegistrySettings


@pytest.mark.parametrize(
    ("text", "host", "path", "tag", "digest"),
    [
        ("busybox", "registry-1.docker.io", "library/busybox", "latest", None),
        ("docker.io/library/busybox:1.36", "registry-1.docker.io", "library/busybox", "1.36", None),
        ("me/app:v2", "registry-1.docker.io", "me/app", "v2", None),
        ("localhost:5000/x:tag", "localhost:5000", "x", "tag", None),
        ("127.0.0.1:5000/team/x", "127.0.0.1:5000", "team/x", "latest", None),
        ("ghcr.io/o/r@sha256:" + "a" * 64, "ghcr.io", "o/r", None, "sha256:" + "a" * 64),
        ("ghcr.io/o/r:1@sha256:" + "b" * 64, "ghcr.io", "o/r", "1", "sha256:" + "b" * 64),
    ],
)
def test_a_reference_is_read_as_docker_reads_it(
    text: str, host: str, path: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.host, ref.path, ref.tag, ref.digest) == (host, path, tag, digest)


def test_the_store_name_drops_docker_hubs_implicit_parts() -> None:
    assert local_name(parse_reference("busybox").store_name or "") == ("busybox", "latest")
    assert local_name(parse_reference("localhost:5000/x:1").store_name or "") == ("localhost:5000/x", "1")


def test_the_store_reads_the_names_it_keeps_with_the_same_parser_refusing_none() -> None:
    # A tag a person chose, or a docker save's RepoTags, is kept as written; only a pull or a
    # push, which send the name to a registry, refuse it.
    assert local_name("My App:dev build") == ("My App", "dev build")
    assert local_name("docker.io/library/x:") == ("x", "")
    with pytest.raises(InputError, match="invalid image reference 'My App:dev build'"):
        parse_reference("My App:dev build")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("Busybox", "repository name"),
        ("x:bad tag", "bad tag"),
        ("x@sha256:123", "not a sha256 digest"),
        ("host:5000/", "repository name"),
    ],
)
def test_a_malformed_reference_is_named(text: str, complaint: str) -> None:
    with pytest.raises(InputError, match=complaint) as raised:
        parse_reference(text)
    assert repr(text) in str(raised.value)


def test_logins_come_from_a_docker_config_and_loopback_may_use_http(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub-user:hub-pass").decode()},
                    "reg.example:5000": {"username": "u", "password": "p"},
                    "https://other.example/v2/": {"identitytoken": "kept by a helper"},
                }
            }
        )
    )
    settings = RegistrySettings.from_env(
        {
            "STUDIO_REGISTRY_AUTH_FILE": str(config),
            "STUDIO_INSECURE_REGISTRIES": "reg.example:5000",
            "STUDIO_PLATFORM": "linux/arm64/v8",
        }
    )
    assert settings.login_for("docker.io") == ("hub-user", "hub-pass")
    assert settings.login_for("reg.example:5000") == ("u", "p")
    assert settings.login_for("other.example") is None
    assert str(settings.platform) == "linux/arm64/v8"
    assert settings.allows_http("reg.example:5000")
    assert all(settings.allows_http(h) for h in ("127.0.0.1:5000", "localhost:5000", "[::1]:5000"))
    assert not settings.allows_http("registry-1.docker.io")


def test_a_bad_setting_names_itself(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="STUDIO_PLATFORM='amd64'"):
        RegistrySettings.from_env({"STUDIO_PLATFORM": "amd64", "HOME": str(tmp_path)})
    with pytest.raises(InputError, match="STUDIO_REGISTRY_CA="):
        RegistrySettings.from_env({"STUDIO_REGISTRY_CA": str(tmp_path / "none.pem")})
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match=r"not a docker config\.json"):
        RegistrySettings.from_env({"STUDIO_REGISTRY_AUTH_FILE": str(broken)})
