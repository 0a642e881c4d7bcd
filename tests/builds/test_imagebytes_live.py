"""Where a build's bytes go, through the served studio with real builds: a file a RUN makes and a
later RUN deletes is wasted in the first RUN's layer, traced to both lines, and the rewrite that
moves the deletion is measured by a Celery task that builds it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.builds.test_builds_live import project, start, wait_for_status
from tests.builds.test_plan_live import build_now
from tests.conftest import Browser, StudioServer

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

BIG = 300_000
# The file names the person, so that no other test's build is in the cache for them.
DOCKERFILE = """\
FROM studio/busybox:1.35
RUN head -c {big} /dev/urandom > /{who}-big.bin \\
 && echo kept > /{who}-kept
COPY app.txt /app/app.txt
RUN rm /{who}-big.bin
"""


def where(browser: Browser, build_id: int, token: str = "") -> Any:
    return browser.get(f"/api/builds/{build_id}/bytes/" + (f"?token={token}" if token else ""))


def wait_rewrite(browser: Browser, build_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hidings = where(browser, build_id).json()["hidings"]
        measure: dict[str, Any] = hidings[0]["measure"]
        if measure["status"] in ("done", "failed"):
            return measure
        time.sleep(0.5)
    raise AssertionError(f"the rewrite of build {build_id} was not measured: {measure}")


def test_a_later_rm_is_traced_to_both_lines_and_its_rewrite_measured(
        browser: Browser, studio_server: StudioServer) -> None:
    browser.sign_up("alice-bytes-1")
    who = "alice-bytes-1"
    build = build_now(browser, project(browser, DOCKERFILE.format(big=BIG, who=who), {"app.txt": "hello\n"}))
    answer = where(browser, build["id"])
    assert answer.status == 200, answer.text
    found = answer.json()

    # The image ships the 300 KB in the RUN's layer; the rm adds a whiteout and nothing shows it.
    assert found["wasted"] == BIG and found["wasted_files"] == 1
    assert found["image"]["size"] == found["shown"] + found["wasted"] == build["image"]["size"]
    assert found["waste"] == [{"path": f"{who}-big.bin", "size": BIG, "layer": 1, "hidden_by": 3,
                               "how": "deleted", "made_line": 2, "hid_line": 5}]
    layers = found["layers"]
    assert [(layer["step"]["line"], layer["step"]["keyword"]) for layer in layers] == [
        (1, "FROM"), (2, "RUN"), (4, "COPY"), (5, "RUN")]
    assert layers[1]["wasted"] == BIG and layers[3]["hides"] == BIG
    assert {row["path"]: row["status"] for row in layers[3]["changes"]} == {f"{who}-big.bin": "deleted"}
    assert {row["path"]: row["status"] for row in layers[1]["changes"]} == {
        f"{who}-big.bin": "wasted", f"{who}-kept": "shown"}
    tree = {child["path"]: child for child in found["tree"]["children"]}
    assert f"{who}-big.bin" not in tree and tree[f"{who}-kept"]["layer"] == 1
    assert found["tree"]["size"] == found["shown"]

    hiding, = found["hidings"]
    assert (hiding["layer"], hiding["hidden_by"], hiding["bytes"], hiding["how"]) == (1, 3, BIG, ["deleted"])
    assert (hiding["made"]["line"], hiding["hid"]["line"]) == (2, 5)
    assert hiding["rewrite"]["after"] == [
        f"RUN head -c {BIG} /dev/urandom > /{who}-big.bin \\", f" && echo kept > /{who}-kept \\",
        f" && rm /{who}-big.bin"]
    assert hiding["measure"] == {"status": "none"}

    rewrite = f"/api/builds/{build['id']}/bytes/rewrite/"
    started = browser.api("POST", rewrite, {"adder_line": 2, "hider_line": 5})
    assert started.status == 202, started.text
    measure = wait_rewrite(browser, build["id"])

    assert measure["status"] == "done", measure
    assert measure["measured"] is True
    # Measured, not estimated: the rewritten image holds the same files less the 300 KB (a
    # file's content is counted, so to the byte), and its tars at least that much less.
    assert measure["saved"] == BIG
    assert BIG <= measure["saved_tar"] < BIG + 8 * 1024
    assert measure["after"]["layers"] == measure["before"]["layers"] - 1
    # The person's project is unchanged: its Dockerfile is still the one built.
    assert browser.get(f"/api/projects/{build['project']}/files/Dockerfile").json()["content"] == \
        DOCKERFILE.format(big=BIG, who=who)

    # A rewrite the page does not suggest is refused, naming it.
    refused = browser.api("POST", rewrite, {"adder_line": 1, "hider_line": 4})
    assert refused.status == 400 and "no rewrite moves line 4 into line 1" in refused.json()["error"]

    # Someone else sees nothing, unless the owner shares the project; even then they cannot
    # start a measure.
    bob = Browser(studio_server.url)
    bob.sign_up("bob-bytes-1")
    assert where(bob, build["id"]).status == 404
    assert bob.get(f"/builds/{build['id']}/bytes/").status == 404
    token = browser.api("POST", f"/api/projects/{build['project']}/share/").json()["share_token"]
    assert where(bob, build["id"], token).json()["wasted"] == BIG
    page = bob.get(f"/builds/{build['id']}/bytes/?token={token}")
    assert page.status == 200 and "Saves" in page.text and "Measure it by building it" not in page.text
    assert bob.api("POST", rewrite, {"adder_line": 2, "hider_line": 5}).status == 404


def test_a_build_without_an_image_says_so(browser: Browser) -> None:
    browser.sign_up("alice-bytes-2")
    failed = start(browser, project(browser, "FROM studio/busybox:1.35\nRUN exit 3\n"))
    wait_for_status(browser, failed["id"], {"failed"}, timeout=60)
    answer = where(browser, failed["id"])
    assert answer.status == 409 and "only a build that succeeded" in answer.json()["error"]
    page = browser.get(f"/builds/{failed['id']}/bytes/")
    assert page.status == 200 and "only a build that succeeded has an image" in page.text
