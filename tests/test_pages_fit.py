"""Every page but the studio's own, as a person sees it on a laptop (1440x900), from a projector
(1280x720) and on a phone (390x844): nothing wider than the screen, the parts a page is about
inside it, nothing cut. A teacher with a project built twice, a class with an exercise and a
student who built it give every page something to show."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.classrooms.test_classrooms import CHECKS, STARTER
from tests.conftest import Browser, StudioServer, Worker
from tests.pages import screenshot, watch_errors

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.usefixtures("base_image")]

SIZES = {"laptop": (1440, 900), "projector": (1280, 720), "phone": (390, 844)}

# What a page measures of itself: how wide it scrolls, which of `keys` stick out of the screen
# (or are missing), which of `whole` cut their own text, and, to say why a page is too wide, the
# widest elements that stick out and are not inside a box that scrolls or clips them.
MEASURE = """([keys, whole]) => {
  const vw = window.innerWidth;
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o !== 'visible') return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const outside = [];
  for (const sel of keys) {
    const els = [...document.querySelectorAll(sel)];
    if (els.length === 0) { outside.push(sel + ' (missing)'); continue; }
    for (const el of els) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.left < -0.5 || r.right > vw + 0.5) {
        outside.push(`${sel}: ${Math.round(r.left)}..${Math.round(r.right)}`);
        break;
      }
    }
  }
  const cut = [];
  for (const sel of whole) {
    for (const el of document.querySelectorAll(sel)) {
      if (el.scrollWidth > el.clientWidth + 1) cut.push(`${sel}: ${el.textContent.trim().slice(0, 40)}`);
    }
  }
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > vw + 0.5 && !clipped(el)) wide.push(`${name(el)} ${Math.round(r.right)}`);
  }
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth: vw, outside, cut,
           wide: wide.slice(0, 8) };
}"""

# From a projector: which of `first` do not begin on the first screen, and which text in
# `readable` is set smaller than the back of a room can read.
PROJECTED = """([first, readable, smallest]) => {
  const below = first.filter((sel) => {
    const el = document.querySelector(sel);
    return !el || el.getBoundingClientRect().top >= innerHeight;
  });
  const small = new Set();
  for (const sel of readable) {
    for (const el of document.querySelectorAll(`${sel}, ${sel} *`)) {
      const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      const size = parseFloat(getComputedStyle(el).fontSize);
      const what = `${sel}: ${el.className || el.tagName} ${size}px`;
      if (text && el.getClientRects().length && size < smallest) small.add(what);
    }
  }
  return { below, small: [...small] };
}"""
# The smallest text a class reads from the back of a room at 1280 px, in CSS pixels.
SMALLEST_PX = 13


@dataclass
class Page:
    """A page to measure: whose it is, when it is ready, what must be on screen, what must be whole."""

    name: str
    path: str
    who: str = ""
    ready: str = "body"
    keys: list[str] = field(default_factory=list)
    whole: list[str] = field(default_factory=list)
    # Whole on a laptop and from a projector; on a phone these may scroll inside their own box.
    roomy: list[str] = field(default_factory=list)
    # From a projector: what begins on the first screen, and what is set large enough to read.
    first_screen: list[str] = field(default_factory=list)
    readable: list[str] = field(default_factory=list)


@dataclass
class Scene:
    people: dict[str, Browser]
    pages: list[Page]


def ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.text
    return reply.json()


def build(browser: Browser, project_id: int) -> int:
    build_id = int(ok(browser.api("POST", f"/api/projects/{project_id}/builds/", {}), 202)["id"])
    deadline = time.monotonic() + 60
    while (status := ok(browser.get(f"/api/builds/{build_id}/"))["status"]) in ("queued", "running"):
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.2)
    assert status == "succeeded"
    return build_id


@pytest.fixture(scope="module")
def scene(studio_server: StudioServer, worker_process: Worker) -> Scene:
    if not worker_process.running:
        worker_process.start()
    run = uuid.uuid4().hex[:6]
    tan, ana = Browser(studio_server.url), Browser(studio_server.url)
    tan.sign_up(f"tan-with-a-long-name-{run}")
    ana.sign_up(f"ana-{run}")
    made = ok(tan.api("POST", "/api/projects/", {"name": "cache lesson", "dockerfile": STARTER}), 201)
    project = int(made["id"])
    for path, content in {"app.py": f"print('{run}')\n", "requirements.txt": "flask\n"}.items():
        ok(tan.api("PUT", f"/api/projects/{project}/files/{path}", {"content": content}))
    first = build(tan, project)
    ok(tan.api("PUT", f"/api/projects/{project}/files/app.py", {"content": f"print('{run} again')\n"}))
    long_run = STARTER.replace(
        "RUN cat app.py > out.txt",
        "RUN cat app.py > out.txt && echo a-rather-long-line-that-a-projector-must-not-cut-short >> out.txt",
    )
    ok(tan.api("PUT", f"/api/projects/{project}/files/Dockerfile", {"content": long_run}))
    second = build(tan, project)
    classroom = ok(tan.api("POST", "/api/classrooms/", {"name": "Caching 101, period 3"}), 201)
    exercise = ok(
        tan.api(
            "POST",
            f"/api/classrooms/{classroom['id']}/exercises/",
            {"title": "Keep the cache warm", "project": project, "checks": CHECKS},
        ),
        201,
    )
    joined = ok(
        ana.api("POST", "/api/classrooms/join/", {"code": classroom["join_code"], "display_name": "Ana"}), 201
    )
    build(ana, joined["exercises"][0]["project"])
    room = f"/classrooms/{classroom['id']}/"
    pages = [
        Page("home", "/", keys=[".site-header", ".intro h1", ".intro .button"]),
        Page("login", "/accounts/login/", keys=[".site-header", ".card", "input[type=password]"]),
        Page("signup", "/accounts/signup/", keys=[".site-header", ".card", "#id_password2"]),
        Page("demo", "/studio/demo/", keys=["#layer-stack", "#replay-demo"]),
        Page("projects", "/studio/", who="tan", keys=[".site-header nav", ".new-project", ".project-list a"]),
        Page("compare-picker", "/compare/", who="tan", keys=[".site-header nav", ".compare-picker-form"]),
        Page(
            "compare",
            f"/compare/{first}/{second}/",
            who="tan",
            ready="#compare[data-ready=true]",
            keys=[".compare-head h1", ".cmp-summary", ".cmp-rows", ".cmp-row .side-b", ".cmp-dockerfile"],
            whole=[".cmp-instruction", ".cmp-reason", ".compare-head h1", ".cmp-mid"],
            first_screen=[".cmp-divergence", ".cmp-row.first-divergence", ".cmp-dockerfile"],
            readable=[".cmp-summary", ".cmp-divergence", ".cmp-rows", ".cmp-dockerfile"],
        ),
        Page("classrooms", "/classrooms/", who="tan", keys=["#class-name", ".inline-form .button"]),
        Page(
            "dashboard",
            room,
            who="tan",
            ready="#grid tbody tr td.cell",
            keys=[".dashboard-head h1", ".join-code", ".grid-wrap", ".exercise-summary", "#mistakes"],
            whole=[".join-code", ".exercise-tabs a"],
            roomy=[".grid-wrap", "table.grid td"],
            first_screen=[".join-code", "#grid tbody tr"],
            readable=[".dashboard-head", ".exercise-summary", ".grid-tools", "#grid", "#mistakes"],
        ),
        Page(
            "student",
            room,
            who="ana",
            keys=[".student-view h1", ".exercise", ".open-copy", ".check"],
            first_screen=[".open-copy", ".check"],
            readable=[".student-view"],
        ),
        Page(
            "join", f"/classrooms/join/{classroom['join_code']}/", who="tan", keys=[".card", "#display-name"]
        ),
        Page(
            "mistake-example",
            f"{room}exercises/{exercise['id']}/mistakes/example/",
            who="tan",
            keys=[".mistake-example h1", ".example-dockerfile"],
            first_screen=[".example-dockerfile"],
            readable=[".mistake-example"],
        ),
    ]
    return Scene({"tan": tan, "ana": ana}, pages)


def open_page(chromium: Any, server: StudioServer, scene: Scene, page: Page, size: tuple[int, int]) -> Any:
    context = chromium.new_context(viewport={"width": size[0], "height": size[1]})
    if page.who:
        cookies = scene.people[page.who].cookies
        context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in cookies])
    tab = context.new_page()
    tab.goto(server.url + page.path)
    tab.wait_for_selector(page.ready, timeout=15_000)
    return tab


@pytest.mark.parametrize("size_name", list(SIZES))
def test_no_page_is_wider_than_the_screen_and_its_parts_are_on_it(
    studio_server: StudioServer, chromium: Any, scene: Scene, size_name: str
) -> None:
    size = SIZES[size_name]
    problems: list[str] = []
    for page in scene.pages:
        tab = open_page(chromium, studio_server, scene, page, size)
        errors = watch_errors(tab)
        whole = page.whole + (page.roomy if size_name != "phone" else [])
        seen = tab.evaluate(MEASURE, [page.keys, whole])
        screenshot(tab, f"fit-{page.name}-{size_name}.png")
        if page.name == "compare":
            tab.locator(".cmp-row.first-divergence").scroll_into_view_if_needed()
            screenshot(tab, f"fit-compare-rows-{size_name}.png")
        if seen["scrollWidth"] > seen["innerWidth"]:
            width = f"{seen['scrollWidth']} px wide in {seen['innerWidth']}"
            problems.append(f"{page.name}: {width}: {seen['wide']}")
        if seen["outside"]:
            problems.append(f"{page.name}: off the screen: {seen['outside']}")
        if seen["cut"]:
            problems.append(f"{page.name}: cut short: {seen['cut']}")
        if errors:
            problems.append(f"{page.name}: errors {errors}")
        tab.context.close()
    assert problems == [], "\n".join(problems)


def test_from_a_projector_the_comparison_and_the_class_begin_on_the_first_screen_in_readable_text(
    studio_server: StudioServer, chromium: Any, scene: Scene
) -> None:
    problems: list[str] = []
    for page in scene.pages:
        if not (page.first_screen or page.readable):
            continue
        tab = open_page(chromium, studio_server, scene, page, SIZES["projector"])
        seen = tab.evaluate(PROJECTED, [page.first_screen, page.readable, SMALLEST_PX])
        if seen["below"]:
            problems.append(f"{page.name}: below the first screen: {seen['below']}")
        if seen["small"]:
            problems.append(f"{page.name}: too small: {seen['small']}")
        tab.context.close()
    assert problems == [], "\n".join(problems)
