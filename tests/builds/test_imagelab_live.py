"""The image lab through the served studio with real builds: the layers a person's images share
(their own images and the base images, never anyone else's), and a squash measured by a Celery
task that rebuilds both ways."""

from __future__ import annotations

import time
from typing import Any

import pytest

from builds.engine.store import Store
from tests.builds.test_builds_live import project
from tests.builds.test_plan_live import build_now
from tests.conftest import Browser, StudioServer

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

# The file names the person, so that no other test's build is in the cache or the store for them.
DOCKERFILE = """\
FROM studio/busybox:1.35
RUN head -c {size} /dev/zero > /{who}-made
COPY app.txt /app/app.txt
"""


def shared(browser: Browser) -> dict[str, Any]:
    answer = browser.get("/api/images/shared/")
    assert answer.status == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def two_images(browser: Browser, who: str) -> list[dict[str, Any]]:
    # Each app.txt names its image too: two files of the same bytes written in the same second
    # make one and the same layer, which both images would then share.
    made = []
    for size in (3000, 5000):
        files = {"app.txt": f"{who}/{size}"}
        made.append(build_now(browser, project(browser, DOCKERFILE.format(size=size, who=who), files)))
    return made


def test_two_own_images_share_the_base_layer_by_a_hand_count(
        browser: Browser, studio_env: dict[str, str], base_image: str) -> None:
    browser.sign_up("alice-lab-1")
    builds = two_images(browser, "alice-lab-1")
    store = Store(studio_env["STUDIO_DATA_DIR"])
    base = store.get_image(base_image)
    assert base is not None and len(base.layers) == 1
    base_size = store.layer(base.layers[0]).size

    usage = shared(browser)

    own = [image for image in usage["images"] if image["own"]]
    assert sorted(image["digest"] for image in own) == sorted(b["image"]["digest"] for b in builds)
    # By hand: each image is the base, its RUN's file and its 16-byte app.txt (in /app).
    assert sorted(image["size"] for image in own) == [base_size + 3000 + 16, base_size + 5000 + 16]
    for image in own:
        assert image["size"] - image["unique"] == base_size  # the base layer, shared
    base_row = next(layer for layer in usage["layers"] if layer["id"] == base.layers[0])
    assert base_row["size"] == base_size
    # Both of alice's images, and the base image itself (under its names), hold it.
    assert base_row["shared_by"] == 1 + len(own) == 3
    # Every layer is counted once however many images hold it.
    assert usage["stored"] == sum(layer["size"] for layer in usage["layers"])
    assert usage["saved"] == sum(layer["size"] * (layer["shared_by"] - 1) for layer in usage["layers"])
    assert usage["images_total"] == usage["stored"] + usage["saved"]


def test_another_persons_images_never_appear(browser: Browser, studio_server: StudioServer) -> None:
    browser.sign_up("alice-lab-2")
    builds = two_images(browser, "alice-lab-2")
    hers = {b["image"]["digest"] for b in builds}
    names = [browser.get(f"/api/projects/{b['project']}/").json()["name"] for b in builds]
    assert all(f"{name} #1" in [i["names"][0] for i in shared(browser)["images"]] for name in names)
    bob = Browser(studio_server.url)
    bob.sign_up("bob-lab-2")
    usage = shared(bob)
    assert not [image for image in usage["images"] if image["own"] or image["digest"] in hers]
    page = bob.get("/images/")
    assert page.status == 200 and not [name for name in names if name in page.text]
    assert "Images and the layers they share" in page.text
    for build in builds:
        assert bob.get(f"/api/builds/{build['id']}/squash/").status == 404
        assert bob.api("POST", f"/api/builds/{build['id']}/squash/", {"file": "app.txt"}).status == 404
        assert bob.post("/images/squash/", {"build": str(build["id"])}).status == 404
        assert bob.get(f"/images/?build={build['id']}").status == 404
    # Alice's own page names her projects.
    assert browser.get("/images/").text.count("yours") >= 2


def wait_measure(browser: Browser, build_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: dict[str, Any] = browser.get(f"/api/builds/{build_id}/squash/").json()
        if found["status"] in ("done", "failed"):
            return found
        time.sleep(0.5)
    raise AssertionError(f"the measure of build {build_id} did not finish: {found}")


def test_a_squash_is_measured_by_real_rebuilds(browser: Browser) -> None:
    browser.sign_up("alice-lab-3")
    build = build_now(browser, project(browser, DOCKERFILE.format(size=400000, who="alice-lab-3"),
                                       {"app.txt": "v1"}))
    assert browser.get(f"/api/builds/{build['id']}/squash/").json() == {"status": "none"}
    started = browser.api("POST", f"/api/builds/{build['id']}/squash/", {"file": "app.txt"})
    assert started.status == 202, started.text

    measure = wait_measure(browser, build["id"])

    assert measure["status"] == "done", measure
    assert measure["measured"] is True and measure["edit"] == "a line appended to app.txt"
    layered, squashed = measure["layered"], measure["squashed"]
    assert (layered["layers"], squashed["layers"]) == (3, 1)
    # The edit changed only the top layer: the layered image resends a few bytes, the squashed
    # one its whole 400 KB file and the base again.
    assert layered["push_layers"] == 1 and layered["push_bytes"] < 10000
    assert squashed["push_bytes"] == squashed["tar_size"] > 400000
    assert layered["push_bytes"] < squashed["push_bytes"]
    page = browser.get(f"/images/?build={build['id']}").text
    assert page.count(">measured<") == 4 and "a line appended to app.txt" in page


def test_a_bad_file_to_edit_fails_the_measure_with_a_message(browser: Browser) -> None:
    browser.sign_up("alice-lab-4")
    made = project(browser, DOCKERFILE.format(size=10, who="alice-lab-4"), {"app.txt": "x"})
    build = build_now(browser, made)
    started = browser.api("POST", f"/api/builds/{build['id']}/squash/", {"file": "../../etc/passwd"})
    assert started.status == 202
    measure = wait_measure(browser, build["id"])
    assert measure["status"] == "failed" and "is not a file in the build context" in measure["error"]
    too_long = browser.api("POST", f"/api/builds/{build['id']}/squash/", {"file": "a" * 2000})
    assert too_long.status == 400 and "file" in too_long.json()["error"]
