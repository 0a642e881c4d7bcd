"""The one error the studio's services raise for a request they refuse, so that the services know
nothing of HTTP and the API still answers with the right status."""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["invalid", "too_large", "too_many", "conflict", "forbidden", "not_found"]

HTTP_STATUS: dict[Kind, int] = {
    "invalid": 400,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "too_many": 429,
}


class Rejected(Exception):
    """`message` says what was wrong and what to do; `details` point at the cause: the `field` of the
    request, the `file` of the context, the `line` of the Dockerfile, the `limit` that was reached."""

    def __init__(self, message: str, *, kind: Kind = "invalid", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.details = details

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.kind]
