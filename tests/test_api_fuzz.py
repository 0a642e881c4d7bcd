"""Hypothesis sends the API whatever a person could: any JSON (surrogates, huge numbers, deep
nesting, wrong types) to every endpoint of projects, files, builds, classrooms, with any file path
in the URL, and any form to the account pages. Nothing may answer 5xx, and every API error is JSON
with an `error`. Bounded in examples so that it runs in seconds."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.classrooms.models import Classroom
from studio.errors import Rejected
from studio.models import User
from studio.projects.files import read_archive
from studio.projects.services import project_create

from .archives import END, gzipped, tar_header

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Characters a hostile client likes: lone surrogates, separators, NUL, newlines.
nasty = st.sampled_from(["\ud800", "\udfff", "\udce9", "/", "..", "\x00", "\n", "\\", "%", "."])
text = st.lists(st.one_of(st.characters(), nasty), max_size=12).map("".join)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, text)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
FIELDS = [
    "name", "dockerfile", "visibility", "dockerfile_path", "content", "encoding", "mode", "from", "to",
    "target", "build_args", "no_cache", "title", "instructions", "project", "checks", "code",
    "display_name", "closed", "shared_project",
]  # fmt: skip
bodies = st.dictionaries(st.one_of(st.sampled_from(FIELDS), text), values, max_size=6)
raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 3000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
)
ENDPOINTS = [
    ("GET", "/api/projects/"),
    ("POST", "/api/projects/"),
    ("GET", "/api/projects/{p}/"),
    ("PATCH", "/api/projects/{p}/"),
    ("POST", "/api/projects/{p}/share/"),
    ("GET", "/api/projects/{p}/files/"),
    ("GET", "/api/projects/{p}/files/{path}"),
    ("PUT", "/api/projects/{p}/files/{path}"),
    ("DELETE", "/api/projects/{p}/files/{path}"),
    ("POST", "/api/projects/{p}/files-move/"),
    ("POST", "/api/projects/{p}/context/"),
    ("GET", "/api/projects/{p}/builds/"),
    ("POST", "/api/projects/{p}/builds/"),
    ("POST", "/api/projects/{p}/plan/"),
    ("POST", "/api/projects/{p}/lint/"),
    ("GET", "/api/builds/{n}/"),
    ("GET", "/api/builds/{n}/events/"),
    ("GET", "/api/compare/{n}/{n}/"),
    ("GET", "/api/classrooms/"),
    ("POST", "/api/classrooms/"),
    ("POST", "/api/classrooms/join/"),
    ("GET", "/api/classrooms/{c}/"),
    ("PATCH", "/api/classrooms/{c}/"),
    ("POST", "/api/classrooms/{c}/exercises/"),
    ("GET", "/api/classrooms/{c}/dashboard/"),
    ("DELETE", "/api/classrooms/{c}/students/{n}/"),
    ("GET", "/api/{path}"),
]


@pytest.fixture
def world(settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.VAR_DIR = tmp_path / "var"
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    user = User.objects.create_user(username="fuzz", password="x")
    project = project_create(owner=user, name="target", dockerfile="FROM busybox\nCOPY . /app\n")
    classroom = Classroom.objects.create(teacher=user, name="class", join_code="ABCD2345")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return {"client": client, "p": project.id, "c": classroom.id}


def url_part(value: str) -> str:
    # Any bytes a URL can carry, surrogates sent as the invalid UTF-8 they would be.
    return quote(value.encode("utf-8", "surrogatepass"), safe="/")


def check(answer: Any, where: str) -> None:
    assert answer.status_code < 500, f"{where} answered {answer.status_code}: {answer.content[:300]!r}"
    if answer.status_code >= 400 and where.startswith("/api/"):
        assert answer["Content-Type"] == "application/json", f"{where}: {answer.content[:300]!r}"
        assert isinstance(json.loads(answer.content).get("error"), str)


@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    body=st.one_of(bodies, raw_bodies),
    path=text,
    number=st.one_of(st.integers(0, 10), st.integers(0, 10**30)),
    query=st.dictionaries(
        st.sampled_from(["token", "after", "replace", "exercise", "a", "b"]), text, max_size=2
    ),
)
def test_no_request_to_the_api_answers_5xx_and_every_error_is_json(
    world: dict[str, Any], endpoint: tuple[str, str], body: Any, path: str, number: int, query: dict[str, str]
) -> None:
    method, template = endpoint
    where = template.format(p=world["p"], c=world["c"], n=number, path=url_part(path) or "x")
    if query:
        where += "?" + "&".join(f"{key}={url_part(value)}" for key, value in query.items())
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    client: Client = world["client"]
    if method == "GET":
        answer = client.get(where)
    else:
        answer = client.generic(method, where, data, content_type="application/json")
    check(answer, where)


@FUZZ
@given(
    page=st.sampled_from(["/accounts/signup/", "/accounts/login/", "/studio/", "/classrooms/join/"]),
    form=st.dictionaries(
        st.sampled_from(["username", "password", "password1", "password2", "name", "code", "display_name"]),
        text,
        max_size=4,
    ),
)
def test_no_form_to_the_account_pages_answers_5xx(
    world: dict[str, Any], page: str, form: dict[str, str]
) -> None:
    sent = {
        key: value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for key, value in form.items()
    }
    check(Client(raise_request_exception=False).post(page, sent), page)
    check(world["client"].post(page, sent), page)


members = st.lists(
    st.tuples(
        st.one_of(
            st.binary(min_size=1, max_size=100),
            st.sampled_from([b"a", b"a/", b"a/b", b"../x", b"/x", b"\xff"]),
        ),
        st.one_of(st.integers(0, 2048), st.integers(0, 2**33)),
        st.sampled_from(
            [b"0", b"\0", b"1", b"2", b"3", b"5", b"6", b"7", b"L", b"K", b"x", b"g", b"X", b"S", b"V"]
        ),
        st.binary(max_size=1200),
    ),
    max_size=8,
)


@FUZZ
@given(parts=members, compress=st.booleans(), end=st.booleans())
def test_any_tar_is_read_or_refused_never_crashes(
    parts: list[tuple[bytes, int, bytes, bytes]], compress: bool, end: bool
) -> None:
    archive = b"".join(
        tar_header(name, size, kind) + data + b"\0" * (-len(data) % 512) for name, size, kind, data in parts
    )
    archive += END if end else b""
    data = gzipped([archive]) if compress else archive
    with contextlib.suppress(Rejected):  # refused is fine; any other exception would be a 500
        read_archive(data)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6))
def test_any_damaged_zip_is_read_or_refused_never_crashes(flips: list[tuple[int, int]]) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Dockerfile", b"FROM busybox\n" * 20)
        archive.writestr("src/", b"")
        archive.writestr("src/app.py", b"print('hello')\n" * 50)
    data = bytearray(out.getvalue())
    for position, byte in flips:
        data[position % len(data)] = byte
    with contextlib.suppress(Rejected):
        read_archive(bytes(data))
