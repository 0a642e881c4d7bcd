"""A repository on a registry, reached through `python-dxf` (the Distribution API v2): the
scheme (HTTPS, or HTTP where allowed), logins, and every failure turned into one message.

dxf answers a 401 by asking the registry's token service for a bearer token (anonymous, or
with the login from settings), or by sending basic auth when the registry asks for that. It
sends a login only over HTTPS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests
from dxf import DXF, DXFBase
from dxf import exceptions as dxf_errors

from ..errors import InputError
from ..reference import Reference
from .settings import RegistrySettings

PING_TIMEOUT_S = 10.0


class RegistryError(InputError):
    """A registry could not be reached, refused us, lacks the image, or sent bad content."""


def guarded_session(settings: RegistrySettings, session: requests.Session | None = None) -> requests.Session:
    """`session` (or a new one) with every connection it makes checked by the settings' address
    policy: a token service or a redirect is no way around it."""
    from .guard import GuardedAdapter

    session = session if session is not None else requests.Session()
    adapter = GuardedAdapter(settings.address_policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _check_address(ref: Reference, settings: RegistrySettings) -> None:
    """Refuse a registry the settings may not reach before anything is sent to it, saying why."""
    if settings.private_ok:
        return
    from .guard import check_host

    name, port = _split_host(ref.host)
    try:
        check_host(name, port, settings.address_policy)
    except ConnectionRefusedError as exc:
        raise RegistryError(f"cannot pull {ref}: {exc}") from None
    except OSError:
        return  # not resolvable: the request itself says so, as for any registry


def _split_host(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    name, _, port = host.partition(":")
    return name, int(port) if port.isdigit() else None


def _https_works(host: str, settings: RegistrySettings) -> bool:
    """Docker's way with a registry that may speak plain HTTP: try HTTPS, and fall back when
    the server does not speak TLS at all."""
    try:
        with guarded_session(settings) as session:
            session.get(f"https://{host}/v2/", timeout=PING_TIMEOUT_S, verify=settings.ca_bundle or True)
    except requests.exceptions.SSLError as exc:
        if "certificate verify failed" in str(exc).lower():
            raise  # it speaks TLS, with a certificate we do not trust: never fall back to HTTP
        return False
    return True


@contextlib.contextmanager
def open_repository(ref: Reference, settings: RegistrySettings) -> Iterator[DXF]:
    """A dxf client for `ref`'s repository, with one HTTP session for all its requests."""
    with registry_errors(ref):
        _check_address(ref, settings)
        insecure = settings.allows_http(ref.host) and not _https_works(ref.host, settings)
        login = settings.login_for(ref.domain)

        def authenticate(dxf: DXFBase, response: requests.Response) -> None:
            if login is None:
                dxf.authenticate(response=response)
            else:
                dxf.authenticate(login[0], login[1], response=response)

        repo = DXF(ref.host, ref.path, auth=authenticate, insecure=insecure,
                   tlsverify=settings.ca_bundle or True, timeout=settings.timeout_s)
        with repo:
            # dxf made one session for all its requests (token service included): guard it.
            guarded_session(settings, repo._sessions[0])  # type: ignore[arg-type]
            yield repo


@contextlib.contextmanager
def registry_errors(ref: Reference, what: str | None = None) -> Iterator[None]:
    """Turn what dxf and requests raise into a RegistryError that names the image."""
    subject = what or str(ref)
    try:
        yield
    except dxf_errors.DXFUnauthorizedError:
        raise RegistryError(f"{ref.host} refused access to {subject}: the repository does not exist "
                            "or needs a login (docker config.json, see STUDIO_REGISTRY_AUTH_FILE)") from None
    except dxf_errors.DXFAuthInsecureError:
        raise RegistryError(f"{ref.host} asks for a login for {subject}, and logins are sent only "
                            "over HTTPS") from None
    except dxf_errors.DXFDigestMismatchError as exc:
        raise RegistryError(f"{subject}: content from {ref.host} does not match its digest "
                            f"({exc}); nothing was stored") from None
    except dxf_errors.DXFError as exc:
        raise RegistryError(f"{subject}: {exc}") from None
    except requests.exceptions.SSLError as exc:
        raise RegistryError(f"cannot reach {ref.host} for {subject} over HTTPS ({_short(exc)}); "
                            "set STUDIO_REGISTRY_CA to its CA, or list it in STUDIO_INSECURE_REGISTRIES "
                            "to allow plain HTTP") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise RegistryError(f"cannot reach the registry {ref.host} for {subject}: {_short(exc)}") from None
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status == 404:
            raise RegistryError(f"{subject} was not found on {ref.host}") from None
        raise RegistryError(f"{ref.host} answered {status} for {subject}: {_body(exc.response)}") from None
    except requests.exceptions.RequestException as exc:
        raise RegistryError(f"{subject}: talking to {ref.host} failed: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    """The innermost reason, e.g. "Name or service not known" or "Connection refused"."""
    text = str(exc)
    for marker in ("Caused by ", "] "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip("()'\" ") or type(exc).__name__


def _body(response: requests.Response | None) -> str:
    if response is None:
        return ""
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or response.reason
    except ValueError:
        return response.reason or ""


def blob_exists(repo: DXF, digest: str) -> bool:
    """HEAD the blob: True when the repository has it."""
    try:
        repo.blob_size(digest)
    except requests.exceptions.HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return False
        raise
    return True
