"""Bad input to the API is answered 4xx in JSON naming the field or file, never an HTML 500: text
that is not valid Unicode, JSON nested without end, names with a newline, URLs and methods no
endpoint has; and an error no view expected is logged and answered in JSON."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client

from studio.classrooms.models import Classroom
from studio.errors import Rejected
from studio.models import User
from studio.projects.models import Project
from studio.projects.services import project_file_put
from tests.projects.test_projects import Api

from .conftest import Browser

pytestmark = pytest.mark.django_db

BAD = "x\ud800y"  # a lone surrogate: json.dumps sends it as the escape \ud800


@pytest.fixture
def alice(settings: Any, tmp_path: Any) -> Api:
    settings.VAR_DIR = tmp_path / "var"
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    return Api("alice")


def refused(answer: Any, status: int = 400) -> dict[str, Any]:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == "application/json"
    return answer.json()


@pytest.mark.parametrize(
    ("method", "where", "body", "field"),
    [
        ("POST", "/api/projects/", {"name": BAD}, "name"),
        (
            "POST",
            "/api/projects/",
            {"name": "p", "dockerfile": f"FROM busybox\nRUN echo {BAD}\n"},
            "dockerfile",
        ),
        ("PUT", "/api/projects/{id}/files/a.txt", {"content": BAD}, "content"),
        ("PATCH", "/api/projects/{id}/", {"dockerfile_path": BAD}, "dockerfile_path"),
        ("POST", "/api/projects/{id}/files-move/", {"from": "Dockerfile", "to": BAD}, "to"),
        ("POST", "/api/projects/{id}/plan/", {"dockerfile": BAD}, "dockerfile"),
        ("POST", "/api/projects/{id}/builds/", {"build_args": {BAD: "1"}}, "build_args"),
        ("POST", "/api/classrooms/", {"name": BAD}, "name"),
        ("POST", "/api/classrooms/join/", {"code": "ABCD2345", "display_name": BAD}, "display_name"),
    ],
)
def test_text_with_a_lone_surrogate_is_refused_naming_the_field(
    alice: Api, method: str, where: str, body: dict[str, Any], field: str
) -> None:
    Classroom.objects.create(teacher=User.objects.create_user("teacher"), name="c", join_code="ABCD2345")
    project_id = alice.new_project()
    answer = alice.call(method, where.format(id=project_id), body)
    assert refused(answer) == {
        "error": f"{field} is not valid Unicode text (it holds a lone surrogate)",
        "field": field,
    }


def test_a_path_with_a_lone_surrogate_is_refused_naming_it(alice: Api) -> None:
    """A URL cannot carry one (it is decoded as UTF-8 with replacement), but a service may be
    handed one by any caller."""
    project = Project.objects.get(id=alice.new_project())
    with pytest.raises(Rejected) as caught:
        project_file_put(project=project, path=BAD, data=b"x")
    assert caught.value.details == {"field": "path"}
    assert caught.value.message == "the path 'x\\ud800y' is not valid Unicode: it holds a lone surrogate"


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"a":' * 40 + "1" + "}" * 40])
def test_deeply_nested_json_is_refused_with_its_bound(alice: Api, body: str) -> None:
    answer = alice.client.post("/api/projects/", body, content_type="application/json")
    assert refused(answer) == {"error": "the body nests deeper than 32 levels", "limit": "json_depth"}


def test_numbers_out_of_range_and_non_json_constants_are_refused(alice: Api) -> None:
    project_id = alice.new_project()
    answer = alice.call("PUT", f"/api/projects/{project_id}/files/a.txt", {"content": "x", "mode": 2**70})
    assert refused(answer)["field"] == "mode"
    answer = alice.client.post("/api/projects/", '{"name": NaN}', content_type="application/json")
    assert "NaN is not a JSON number" in refused(answer)["error"]
    answer = alice.call("POST", "/api/classrooms/1/exercises/", {"title": "t", "project": 10**18})
    assert answer.status_code in (400, 404) and answer["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("A\n", "build arg 'A\\n' is not a valid name"),
        ("A" * 5000, "is too long a name (at most 128 characters)"),
    ],
)
def test_a_build_arg_name_with_a_newline_or_of_absurd_length_is_refused(
    alice: Api, name: str, says: str
) -> None:
    project_id = alice.new_project()
    for where in ("builds", "plan"):
        answer = alice.call("POST", f"/api/projects/{project_id}/{where}/", {"build_args": {name: "1"}})
        body = refused(answer)
        assert body["field"] == "build_args" and says in body["error"]


def test_urls_and_methods_no_endpoint_has_answer_in_json(alice: Api) -> None:
    assert refused(alice.client.get("/api/nothing-here/"), 404) == {
        "error": "no API endpoint at /api/nothing-here/"
    }
    assert refused(alice.client.get(f"/api/projects/{10**30}/"), 404) == {"error": "not found"}
    assert refused(alice.client.get(f"/api/builds/{2**63}/"), 404) == {"error": "not found"}
    not_allowed = alice.client.post("/api/schema/")
    assert refused(not_allowed, 405) == {"error": "method not allowed"}
    assert not_allowed["Allow"] == "GET"
    # Pages outside the API keep their HTML.
    assert "text/html" in alice.client.get("/no-such-page/")["Content-Type"]


def test_an_unexpected_error_is_logged_and_answered_in_json(
    alice: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from studio.projects import services

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a bug in the studio")

    monkeypatch.setattr(services, "project_share", broken)
    project_id = alice.new_project()
    # The test client raises what a view raised, so a bug is never hidden from a test...
    with pytest.raises(RuntimeError, match="a bug in the studio"):
        alice.call("POST", f"/api/projects/{project_id}/share/")
    # ...while a browser gets JSON, and the log the traceback.
    browser = Client(raise_request_exception=False)
    browser.force_login(alice.user)
    with caplog.at_level(logging.ERROR, logger="studio.api"):
        answer = browser.post(f"/api/projects/{project_id}/share/")
    assert refused(answer, 500) == {
        "error": "the studio failed to answer this request; the error has been logged"
    }
    logged = [r for r in caplog.records if r.name == "studio.api"]
    assert logged and logged[0].exc_info and "a bug in the studio" in str(logged[0].exc_info[1])
    assert json.loads(answer.content)  # JSON, not an HTML page


def test_the_served_studio_answers_bad_input_in_json(browser: Browser) -> None:
    """The same through uvicorn, where the middleware runs in the async stack."""
    missing = browser.api("GET", "/api/nothing-here/")
    assert missing.status == 404 and missing.json() == {"error": "no API endpoint at /api/nothing-here/"}
    browser.sign_up("mallory-json")
    surrogate = browser.api(
        "POST", "/api/projects/", body=b'{"name": "x\\ud800y"}', content_type="application/json"
    )
    assert surrogate.status == 400 and surrogate.json()["field"] == "name"
    deep = browser.api("POST", "/api/projects/", body=b"[" * 50_000, content_type="application/json")
    assert deep.status == 400 and deep.json()["limit"] == "json_depth"
    not_allowed = browser.api("GET", "/api/ping/")
    assert not_allowed.status == 405 and not_allowed.json() == {"error": "method not allowed"}
