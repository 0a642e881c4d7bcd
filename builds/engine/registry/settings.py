"""How the engine talks to registries, read from the environment (the engine imports no Django):

    STUDIO_INSECURE_REGISTRIES  hosts ("host[:port]", comma-separated) that may answer over
                                plain HTTP; loopback hosts always may
    STUDIO_REGISTRY_CA          a CA bundle (PEM) that registry certificates are checked against,
                                instead of the system's
    STUDIO_REGISTRY_AUTH_FILE   a docker `config.json` with logins ("auths"); default
                                $DOCKER_CONFIG/config.json, else ~/.docker/config.json
    STUDIO_PLATFORM             the platform picked from multi-platform images (linux/amd64)
    STUDIO_REGISTRY_ALLOW_PRIVATE  hosts ("host[:port]", comma-separated) that web builds may pull
                                from although they are on loopback, link-local or private
                                addresses (those in STUDIO_INSECURE_REGISTRIES may too); the
                                command line may reach any address
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..dockerhub import DOCKER_HUB, DOCKER_HUB_LOGIN_KEYS
from ..errors import InputError

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str, source: str = "STUDIO_PLATFORM") -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InputError(f"{source}={text!r}: expected OS/ARCH[/VARIANT], e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


@dataclass(frozen=True)
class RegistrySettings:
    insecure: frozenset[str] = frozenset()
    ca_bundle: str | None = None
    logins: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # registry domain -> (user, password)
    platform: Platform = Platform("linux", "amd64")
    timeout_s: float = 60.0
    # False for web builds: only public addresses, and the hosts in `allow_private`.
    private_ok: bool = True
    allow_private: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RegistrySettings:
        insecure = frozenset(h.strip() for h in environ.get("STUDIO_INSECURE_REGISTRIES", "").split(",")
                             if h.strip())
        ca = environ.get("STUDIO_REGISTRY_CA") or None
        if ca is not None and not Path(ca).is_file():
            raise InputError(f"STUDIO_REGISTRY_CA={ca!r}: no such file")
        allow = frozenset(h.strip() for h in environ.get("STUDIO_REGISTRY_ALLOW_PRIVATE", "").split(",")
                          if h.strip())
        return cls(insecure=insecure, ca_bundle=ca, logins=_read_logins(_auth_file(environ)),
                   platform=Platform.parse(environ.get("STUDIO_PLATFORM") or DEFAULT_PLATFORM),
                   allow_private=allow | insecure)

    def address_policy(self, host: str, port: int | None,
                       address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why this connection is refused, or None: web builds reach only public addresses,
        and the hosts the operator listed."""
        if self.private_ok:
            return None
        from .guard import forbidden

        why = forbidden(address)
        if why is None:
            return None
        spelled = {host, f"{host}:{port}", f"[{host}]:{port}"} if port else {host}
        if spelled & self.allow_private:
            return None
        return (f"{host} is at {why}, which builds from the studio may not reach; an operator can "
                "list it in STUDIO_REGISTRY_ALLOW_PRIVATE")

    def allows_http(self, host: str) -> bool:
        return host in self.insecure or _is_loopback(host)

    def login_for(self, domain: str) -> tuple[str, str] | None:
        return self.logins.get(domain)


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, [::1] and localhost, with or without a port."""
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _auth_file(environ: Mapping[str, str]) -> Path | None:
    if environ.get("STUDIO_REGISTRY_AUTH_FILE"):
        return Path(environ["STUDIO_REGISTRY_AUTH_FILE"])
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    home = environ.get("HOME")
    return Path(home) / ".docker" / "config.json" if home else None


def _read_logins(path: Path | None) -> dict[str, tuple[str, str]]:
    """The logins a docker config.json holds inline ("auth" or "username"/"password"); logins
    kept by credential helpers are not read."""
    if path is None or not path.is_file():
        return {}
    try:
        auths = json.loads(path.read_text()).get("auths") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a docker config.json ({exc})") from None
    logins: dict[str, tuple[str, str]] = {}
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise InputError(f"{path}: the login for {key!r} is not base64 of user:password") from None
        if user and password:
            logins[_domain_of(key)] = (user, password)
    return logins


def _domain_of(key: str) -> str:
    if key in DOCKER_HUB_LOGIN_KEYS:
        return DOCKER_HUB
    return key.split("://", 1)[-1].split("/", 1)[0]
