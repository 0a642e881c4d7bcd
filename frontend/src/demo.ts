// The recorded demo: a layer stack fed by a recorded replay (?events=<url of a JSON lines file>,
// or the bundled recording), or by a build's socket with ?build=<id>. While it replays, the page
// tells the story beside the stack: the Dockerfile line each step runs, what changed between the
// builds, and a sentence for every verdict, so a visitor learns it without a teacher.
import "./demo.css";
import { LayerStackView } from "./layerstack";
import { BuildStore, connectBuild } from "./store";
import { sleep, splitBuilds } from "./replay";
import { setupLargeText } from "./largetext";
import { parseEvent } from "./protocol";
import type { BuildEvent } from "./protocol";
import { editMoment, momentOf, type Moment } from "./demostory";

const STEP_DELAY_MS = 250;
const BETWEEN_BUILDS_MS = 2500;

/** The parts of the page that tell the story; absent ones are simply not told. */
class Story {
  private readonly lines: Map<number, HTMLElement>;
  private stepLines = new Map<number, number>();

  constructor(
    private readonly narration: HTMLElement | null,
    dockerfile: HTMLElement | null,
    private readonly edit: HTMLElement | null,
  ) {
    this.lines = new Map(
      [...(dockerfile?.querySelectorAll<HTMLElement>("li[data-line]") ?? [])].map((li) => [Number(li.dataset["line"]), li]),
    );
  }

  clear(): void {
    this.narration?.replaceChildren();
    this.edit?.classList.remove("now");
    this.resetLines();
  }

  private resetLines(): void {
    for (const li of this.lines.values()) {
      li.classList.remove("current");
      li.removeAttribute("data-verdict");
      li.querySelector(".line-verdict")?.remove();
    }
  }

  private say(moment: Moment, kind: string): void {
    if (!this.narration) return;
    const item = document.createElement("li");
    item.className = kind;
    const title = document.createElement("strong");
    title.textContent = moment.title;
    item.append(title);
    if (moment.verdict) {
      const verdict = document.createElement("span");
      verdict.className = "narration-verdict";
      verdict.textContent = moment.verdict;
      item.append(" ", verdict);
    }
    item.append(` ${moment.text}`);
    this.narration.append(item);
    // The newest sentence in view, scrolling the list only, never the page under a reader.
    this.narration.scrollTop = this.narration.scrollHeight;
  }

  /** The edit between two builds: highlighted, and said. */
  between(): void {
    this.resetLines();
    this.edit?.classList.add("now");
    this.say(editMoment(this.edit?.dataset["path"] ?? "a file"), "narration-edit");
  }

  tell(event: BuildEvent, build: number, builds: number): void {
    if (event.type === "build.started") {
      this.resetLines();
      this.edit?.classList.remove("now");
      this.stepLines = new Map(event.steps.map((s) => [s.step, s.line]));
    }
    if (event.type === "step.started") this.point(this.stepLines.get(event.step) ?? null);
    if (event.type === "step.finished") {
      this.point(null);
      const li = this.lines.get(event.line);
      if (li) {
        li.dataset["verdict"] = event.status;
        const word = document.createElement("span");
        word.className = "line-verdict";
        word.textContent = momentOf(event, build, builds)?.verdict ?? "";
        li.append(word);
      }
    }
    const moment = momentOf(event, build, builds);
    if (moment) this.say(moment, event.type === "step.finished" ? `narration-step said-${event.status}` : "narration-build");
  }

  private point(line: number | null): void {
    for (const [n, li] of this.lines) li.classList.toggle("current", n === line);
  }
}

export function startDemo(root: HTMLElement): void {
  const params = new URLSearchParams(location.search);
  const stage = root.querySelector<HTMLElement>("#layer-stack");
  const replayButton = root.querySelector<HTMLButtonElement>("#replay-demo");
  const largeButton = root.querySelector<HTMLButtonElement>("#large-text");
  const caption = root.querySelector<HTMLElement>("#build-caption");
  if (!stage || !replayButton || !largeButton || !caption) return;
  setupLargeText(largeButton);
  const story = new Story(
    root.querySelector<HTMLElement>("#demo-narration"),
    root.querySelector<HTMLElement>("#demo-dockerfile"),
    root.querySelector<HTMLElement>("#demo-edit"),
  );

  const eventsUrl = params.get("events") ?? root.dataset["demoEvents"] ?? "";
  let running: AbortController | null = null;
  let view: LayerStackView | null = null;
  const show = (store: BuildStore): void => {
    view?.destroy();
    view = new LayerStackView(stage, store);
  };

  const replay = async (): Promise<void> => {
    running?.abort();
    const controller = new AbortController();
    running = controller;
    delete root.dataset["replay"];
    replayButton.disabled = true;
    story.clear();
    try {
      const response = await fetch(eventsUrl, { signal: controller.signal });
      if (!response.ok) throw new Error(`could not load ${eventsUrl}: ${response.status}`);
      const builds = splitBuilds(await response.text());
      for (const [i, lines] of builds.entries()) {
        if (i > 0) {
          caption.textContent = "Between the builds: the edit";
          story.between();
          await sleep(BETWEEN_BUILDS_MS, controller.signal);
        }
        caption.textContent = `Replaying build ${i + 1} of ${builds.length}`;
        const store = new BuildStore();
        show(store);
        for (const line of lines) {
          const event = parseEvent(line);
          store.apply(event);
          story.tell(event, i + 1, builds.length);
          await sleep(STEP_DELAY_MS, controller.signal);
        }
      }
      caption.textContent = `Replayed build ${builds.length} of ${builds.length}`;
      root.dataset["replay"] = "done";
    } catch (error) {
      if (!(error instanceof DOMException && error.name === "AbortError")) {
        caption.textContent = error instanceof Error ? error.message : String(error);
      }
    } finally {
      if (running === controller) replayButton.disabled = false;
    }
  };
  replayButton.addEventListener("click", () => void replay());

  const buildId = params.get("build");
  // The Dockerfile and the edit on the page are the bundled recording's; another's hides them.
  if (buildId || params.has("events")) root.classList.add("demo-other");
  if (buildId) {
    const store = new BuildStore();
    show(store);
    caption.textContent = `Build ${buildId}`;
    connectBuild(buildId, store, { location: window.location });
  } else if (params.has("events")) {
    void replay();
  } else {
    show(new BuildStore());
  }
}
