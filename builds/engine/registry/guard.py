"""Which addresses a registry may be reached at. A web build's `FROM host/x` must not make the
worker send requests to its own machine or its private network (the studio itself, Redis, a
cloud's metadata service), so every connection a pull makes (the registry, its token service,
the redirects of its blob downloads) is checked where it is made: the name is resolved once,
every address it resolves to is checked, and the connection goes to a checked address, so a
DNS answer that changes between a check and the connect cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Policy = Callable[[str, int | None, Address], str | None]  # (host, port, address) -> why refused


def forbidden(address: Address) -> str | None:
    """Why `address` is not a public one a web build may reach, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for test, what in ((address.is_loopback, "a loopback"), (address.is_link_local, "a link-local"),
                       (address.is_unspecified, "an unspecified"), (address.is_multicast, "a multicast"),
                       (address.is_private, "a private"), (address.is_reserved, "a reserved"),
                       (not address.is_global, "a non-public")):
        if test:
            return f"{what} address ({address})"
    return None


def resolve(host: str, port: int | None) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port or 443, 0, socket.SOCK_STREAM)


def check_host(host: str, port: int | None, policy: Policy) -> list[tuple[Any, ...]]:
    """The addresses `host` resolves to, when the policy allows every one; else ConnectionRefused
    naming the first it does not. One refused address refuses them all: a name that answers
    with both a public and a loopback address would otherwise reach the loopback one."""
    infos = resolve(host, port)
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        why = policy(host, port, address)
        if why is not None:
            raise ConnectionRefusedError(why)
    return infos


def _guarded(base: type[HTTPConnection], policy: Policy) -> type[HTTPConnection]:
    class Guarded(base):  # type: ignore[valid-type, misc]
        _dns_host: str  # HTTPConnection's, unseen through the dynamic base
        def _new_conn(self) -> Any:
            try:
                infos = check_host(self._dns_host, self.port, policy)
            except (ConnectionRefusedError, OSError) as exc:
                raise NewConnectionError(self, str(exc)) from exc
            # Connect to the address checked, not to the name again (TLS still checks the name).
            name = self._dns_host
            self._dns_host = infos[0][4][0]
            try:
                return super()._new_conn()
            finally:
                self._dns_host = name

    return Guarded


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection is checked by `policy`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = type("GuardedHTTPPool", (HTTPConnectionPool,),
                    {"ConnectionCls": _guarded(HTTPConnection, self.policy)})
        https = type("GuardedHTTPSPool", (HTTPSConnectionPool,),
                     {"ConnectionCls": _guarded(HTTPSConnection, self.policy)})
        self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}
