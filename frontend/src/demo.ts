// The recorded demo: a layer stack fed by a recorded replay (?events=<url of a JSON lines file>,
// or the bundled recording), or by a build's socket with ?build=<id>.
import { LayerStackView } from "./layerstack";
import { BuildStore, connectBuild } from "./store";
import { sleep, splitBuilds } from "./replay";
import { setupLargeText } from "./largetext";

const STEP_DELAY_MS = 150;
const BETWEEN_BUILDS_MS = 1200;

export function startDemo(root: HTMLElement): void {
  const params = new URLSearchParams(location.search);
  const stage = root.querySelector<HTMLElement>("#layer-stack");
  const replayButton = root.querySelector<HTMLButtonElement>("#replay-demo");
  const largeButton = root.querySelector<HTMLButtonElement>("#large-text");
  const caption = root.querySelector<HTMLElement>("#build-caption");
  if (!stage || !replayButton || !largeButton || !caption) return;
  setupLargeText(largeButton);

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
    replayButton.disabled = true;
    try {
      const response = await fetch(eventsUrl, { signal: controller.signal });
      if (!response.ok) throw new Error(`could not load ${eventsUrl}: ${response.status}`);
      const builds = splitBuilds(await response.text());
      for (const [i, lines] of builds.entries()) {
        caption.textContent = `Replaying build ${i + 1} of ${builds.length}`;
        const store = new BuildStore();
        show(store);
        for (const line of lines) {
          store.receive(line);
          await sleep(STEP_DELAY_MS, controller.signal);
        }
        if (i < builds.length - 1) await sleep(BETWEEN_BUILDS_MS, controller.signal);
      }
      caption.textContent = `Replayed build ${builds.length} of ${builds.length}`;
      root.dataset["replay"] = "done";
    } catch (error) {
      if (!(error instanceof DOMException && error.name === "AbortError")) {
        caption.textContent = error instanceof Error ? error.message : String(error);
      }
    } finally {
      replayButton.disabled = false;
    }
  };
  replayButton.addEventListener("click", () => void replay());

  const buildId = params.get("build");
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
