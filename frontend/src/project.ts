// A project's studio: the files and the editor on the left, the build and its layer stack on the
// right, the history below. It wires the parts together; each part lives in its own module.
import { Api, ApiError, filePath, type Answer, type RequestBody } from "./api";
import { AutoSaver, saveStateText } from "./autosave";
import { StudioEditor, type LintDiagnostic } from "./editor";
import { FilePanel, type FileInfo } from "./files";
import { Tabs } from "./tabs";
import { LayerStackView } from "./layerstack";
import { BuildStore, connectBuild } from "./store";
import { HistoryView, PLANNED, type BuildSummary } from "./history";
import type { BuildFinished } from "./protocol";
import { Inspector } from "./inspector";
import { setupLargeText } from "./largetext";
import { lineMarks, stepAtLine, stepEndLine, changedPredictions, type PlanStep } from "./dockerlines";
import { parseBuildArgs, type BuildOptions } from "./options";
import { ShareControl } from "./share";
import { TakeHome } from "./takehome";
import { ContainerLab } from "./container/lab";

/** On a phone the stack comes first and the editor opens on demand, with this button. */
function setupEditorToggle(root: HTMLElement, button: HTMLButtonElement, focus: () => void): void {
  const closed = button.textContent ?? "";  // "Edit the files", or "Show the files" read only
  button.addEventListener("click", () => {
    const open = root.dataset["editor"] !== "open";
    root.dataset["editor"] = open ? "open" : "closed";
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "Hide the files" : closed;
    if (open) focus();
  });
}

const PLAN_DELAY_MS = 400;

type PlanResponse = Answer<"project_plan">;

function need<T extends HTMLElement>(root: HTMLElement, selector: string): T {
  const found = root.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
}

export function startProject(root: HTMLElement): void {
  new ProjectStudio(root).start().catch((error: unknown) => {
    need(root, "#studio-message").textContent = error instanceof Error ? error.message : String(error);
  });
}

class ProjectStudio {
  private readonly api: Api;
  private readonly projectId: string;
  private readonly shareToken: string;
  private readonly canEdit: boolean;
  private dockerfile = "Dockerfile";
  private readonly editor: StudioEditor;
  private readonly saver: AutoSaver;
  private readonly files: FilePanel;
  private readonly tabs: Tabs;
  private readonly history: HistoryView;
  private readonly inspector: Inspector;
  private readonly takeHome: TakeHome;
  private readonly bytesLink: HTMLElement;
  private readonly containers: ContainerLab;
  private readonly stackRoot: HTMLElement;
  private readonly message: HTMLElement;
  private readonly buildMessage: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly prediction: HTMLElement;
  private readonly buildButton: HTMLButtonElement;
  private readonly cancelButton: HTMLButtonElement;
  private store: BuildStore | null = null;
  private stack: LayerStackView | null = null;
  private connection: { stop: () => void } | null = null;
  private buildId: number | null = null;
  private selectedStep: number | null = null;
  private planTimer: ReturnType<typeof setTimeout> | null = null;
  private predicting = false;
  private predictAgain = false;
  private lastPlan: PlanStep[] = [];

  constructor(private readonly root: HTMLElement) {
    this.projectId = root.dataset["projectId"] ?? "";
    this.canEdit = root.dataset["canEdit"] === "true";
    this.shareToken = new URLSearchParams(location.search).get("token") ?? "";
    this.api = new Api(this.shareToken);
    this.message = need(root, "#studio-message");
    this.buildMessage = need(root, "#build-message");
    this.caption = need(root, "#build-caption");
    this.prediction = need(root, "#prediction");
    this.buildButton = need<HTMLButtonElement>(root, "#build-button");
    this.cancelButton = need<HTMLButtonElement>(root, "#cancel-button");
    this.stackRoot = need(root, "#layer-stack");
    const saveState = need(root, "#save-state");
    this.saver = new AutoSaver(
      async (path, text) => {
        const saved = await this.api.call<Answer<"project_file_put">>("PUT", `/api/projects/${this.projectId}/files/${filePath(path)}`, { content: text } satisfies RequestBody<"project_file_put">);
        this.files.upsert(saved);
        // A saved context file changes what the next build reuses: ask the planner again.
        if (path !== this.dockerfile) this.schedulePlan();
      },
      (state) => {
        saveState.textContent = saveStateText(state);
        saveState.title = saveStateText(state);  // the bar may cut a long reason short
        saveState.dataset["state"] = state.kind;
        if (state.kind === "error") this.say(saveStateText(state), true);
      },
    );
    this.editor = new StudioEditor(need(root, "#editor"), {
      onChange: (path, text) => {
        this.saver.edit(path, text);
        if (path === this.dockerfile) {
          this.editor.markError(path, null);
          this.schedulePlan();
        }
      },
      onRun: () => void this.build(),
      onCursorLine: (path, line) => this.cursorMoved(path, line),
    }, !this.canEdit);
    this.tabs = new Tabs(need(root, "#tabs"), (path) => void this.open(path), (path) => this.closeTab(path));
    this.files = new FilePanel(need(root, "#files"), this.api, this.projectId, this.canEdit, {
      open: (path) => void this.open(path),
      moved: (from, to) => this.fileMoved(from, to),
      replaced: (paths) => this.filesReplaced(paths),
      message: (text, isError) => this.say(text, isError),
    });
    this.history = new HistoryView(need(root, "#history"), this.api, this.projectId, (id) => this.showBuild(id, false));
    this.inspector = new Inspector(need(root, "#inspector"), this.api, () => this.closeInspector());
    this.takeHome = new TakeHome(need(root, "#take-home"), this.api);
    this.bytesLink = need(root, "#bytes-link");
    this.containers = new ContainerLab(need(root, "#container-lab"), this.api, this.stackRoot, this.canEdit);
  }

  /** The link to where the bytes of a succeeded build's image go (a share link's token along). */
  private showBytesLink(id: number, status: string | null): void {
    this.bytesLink.hidden = status !== "succeeded";
    const link = this.bytesLink.querySelector("a");
    const token = this.shareToken ? `?token=${encodeURIComponent(this.shareToken)}` : "";
    if (link) link.href = `/builds/${id}/bytes/${token}`;
  }

  async start(): Promise<void> {
    setupLargeText(need<HTMLButtonElement>(this.root, "#large-text"));
    setupEditorToggle(this.root, need<HTMLButtonElement>(this.root, "#show-editor"), () => this.editor.focus());
    const share = this.root.querySelector<HTMLElement>("#share");
    // Escape closes the inspector from anywhere on the page, and the band it showed gets the focus back.
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && this.inspector.isOpen()) {
        ev.preventDefault();
        this.closeInspector();
      }
    });
    this.buildButton.addEventListener("click", () => void this.build());
    this.buildButton.disabled = !this.canEdit;
    this.cancelButton.addEventListener("click", () => void this.cancel());
    window.addEventListener("beforeunload", (ev) => {
      if (this.saver.hasUnsaved()) ev.preventDefault();
    });
    const project = await this.api.call<Answer<"project_get">>("GET", `/api/projects/${this.projectId}/`);
    this.dockerfile = project.dockerfile_path;
    if (share && this.canEdit) new ShareControl(share, this.api, this.projectId, project.share_token ?? null);
    this.files.setFiles(project.files);
    if (project.files.some((f) => f.path === this.dockerfile)) await this.open(this.dockerfile);
    this.stack = new LayerStackView(this.stackRoot, new BuildStore());
    const wanted = Number(new URLSearchParams(location.search).get("build"));
    await this.history.refresh().catch((e: unknown) => this.say(String(e), true));
    // Coming back shows where the project stands: the build the address names, else the newest.
    const latest = this.history.latest();
    if (wanted > 0) this.showBuild(wanted, false);
    else if (latest) this.showBuild(latest.id, this.canEdit && (latest.status === "queued" || latest.status === "running"));
    this.history.follow(window.location, this.shareToken);
    this.schedulePlan();
    this.root.dataset["ready"] = "true";
  }

  private say(text: string, isError = false): void {
    this.message.textContent = text;
    this.message.classList.toggle("error", isError);
  }

  /** Opens a file in a tab, fetching its text the first time. */
  private async open(path: string): Promise<void> {
    if (!this.editor.isOpen(path)) {
      const file = await this.api.call<Answer<"project_file_get">>("GET", `/api/projects/${this.projectId}/files/${filePath(path)}`).catch((e: unknown) => {
        this.say(e instanceof Error ? e.message : String(e), true);
        return null;
      });
      if (!file) return;
      if (file.encoding !== "utf-8") {
        this.say(`${path} is not text (${file.size} bytes); it is kept in the context but cannot be edited here.`);
        return;
      }
      this.editor.open(path, file.content);
    } else {
      this.editor.open(path, "");
    }
    this.tabs.show(path);
    this.files.active = path;
    this.files.render();
    this.root.dataset["openFile"] = path;
  }

  private closeTab(path: string): void {
    // Saved first, so that opening it again reads what was typed.
    void this.saver.flush().catch(() => undefined);
    const next = this.tabs.close(path);
    if (path !== this.dockerfile) this.editor.close(path);
    // The editor never stands empty: with the last tab closed, the Dockerfile comes back.
    void this.open(next ?? this.dockerfile);
  }

  private fileMoved(from: string, to: string | null): void {
    this.saver.forget(from);
    const text = this.editor.text(from);
    const wasOpen = this.tabs.has(from);
    this.editor.close(from);
    if (from === this.dockerfile && to) this.dockerfile = to;
    if (wasOpen) {
      if (to && text !== null) {
        this.editor.open(to, text);
        this.tabs.rename(from, to);
        if (this.tabs.active !== to) void this.open(this.tabs.active);
      } else {
        this.closeTab(from);
      }
    }
    this.schedulePlan();
  }

  private filesReplaced(paths: string[]): void {
    // An upload may have replaced an open file: drop its state so the next open reads it anew.
    for (const path of paths) {
      if (!this.tabs.has(path)) continue;
      this.editor.close(path);
      if (this.tabs.active === path) void this.open(path);
    }
    this.schedulePlan();
  }

  private options(): BuildOptions | null {
    const target = need<HTMLInputElement>(this.root, "#build-target").value.trim();
    const parsed = parseBuildArgs(need<HTMLTextAreaElement>(this.root, "#build-args").value);
    if ("error" in parsed) {
      this.buildMessage.textContent = parsed.error;
      return null;
    }
    return { target, build_args: parsed.args, no_cache: need<HTMLInputElement>(this.root, "#no-cache").checked };
  }

  /** Saves what is typed, starts a build, and follows it. */
  private async build(): Promise<void> {
    if (!this.canEdit || this.buildButton.getAttribute("aria-busy") === "true") return;
    const options = this.options();
    if (!options) return;
    this.buildButton.setAttribute("aria-busy", "true");
    this.buildMessage.textContent = "";
    this.buildMessage.classList.remove("error");
    try {
      await this.saver.flush();
      const build = await this.api.call<Answer<"build_create">>("POST", `/api/projects/${this.projectId}/builds/`, options satisfies RequestBody<"build_create">);
      this.showBuild(build.id, true, build.number);
      void this.history.refresh();
    } catch (error) {
      this.buildFailedToStart(error);
    } finally {
      this.buildButton.removeAttribute("aria-busy");
    }
  }

  private buildFailedToStart(error: unknown): void {
    let message = error instanceof Error ? error.message : String(error);
    if (error instanceof ApiError && error.line !== null && !/\bline \d/.test(message)) {
      const file = typeof error.details["file"] === "string" ? error.details["file"] : this.dockerfile;
      message += ` (${file}, line ${error.line})`;
    }
    this.buildMessage.textContent = `The build did not start: ${message}`;
    this.buildMessage.classList.add("error");
    if (error instanceof ApiError && error.line !== null) {
      const file = typeof error.details["file"] === "string" ? error.details["file"] : this.dockerfile;
      void this.open(file).then(() => this.editor.markError(file, error.line));
    }
  }

  /** A build that failed at a step (a missing COPY source, a RUN that exited non-zero) names
   * the line and marks it in the editor, as a Dockerfile that does not parse does. */
  private markRuntimeError(done: BuildFinished): void {
    const line = done.error?.["line"];
    if (done.status !== "failed" || typeof line !== "number") return;
    // The engine names the Dockerfile by its base name; the line is a step's, in the project's.
    const named = done.error?.["file"];
    if (typeof named === "string" && named !== this.dockerfile.split("/").pop()) return;
    const file = this.dockerfile;
    const message = typeof done.error?.["message"] === "string" ? done.error["message"] : "the step failed";
    this.buildMessage.textContent = `The build failed at ${file}, line ${line}: ${message}`;
    this.buildMessage.classList.add("error");
    void this.open(file).then(() => this.editor.markError(file, line));
  }

  /** Shows a build's stack: live while it runs, replayed from its stored events once it ended. */
  private showBuild(id: number, live: boolean, number = this.history.numberOf(id)): void {
    this.connection?.stop();
    this.stack?.destroy();
    this.inspector.hide();
    this.selectedStep = null;
    this.editor.highlightSteps(this.dockerfile, null);
    this.containers.setBuild(null, false);
    const store = new BuildStore();
    this.store = store;
    this.buildId = id;
    this.stack = new LayerStackView(this.stackRoot, store, { onSelect: (step) => this.selectStep(step) });
    const name = number === null ? `Build ${id}` : `Build #${number}`;
    this.caption.textContent = live ? `${name} · queued` : name;
    this.root.dataset["build"] = String(id);
    let announced = false;
    this.cancelButton.hidden = !this.canEdit || !live;
    this.takeHome.show(id, null);
    this.showBytesLink(id, null);
    store.subscribe(() => {
      if (store !== this.store) return;
      const done = store.finished;
      this.cancelButton.hidden = !this.canEdit || done !== null;
      const status = done ? done.status : store.plan.length ? "running" : "queued";
      this.caption.textContent = `${name} · ${status}${this.history.sharedCacheNote(id)}`;
      if (done) this.containers.setBuild(id, this.canEdit && done.status === "succeeded");
      if (done && !announced) {
        announced = true;
        this.root.dataset["buildStatus"] = done.status;
        this.takeHome.show(id, done.status);
        this.showBytesLink(id, done.status);
        if (live) this.markRuntimeError(done);
        void this.history.refresh();
        this.schedulePlan();
      }
    });
    delete this.root.dataset["buildStatus"];
    this.connection = connectBuild(String(id), store, {
      location: window.location,
      token: this.shareToken,
      onError: (error) => this.say(`A build event could not be read: ${String(error)}`, true),
    });
    this.history.setCurrent(id);
    const url = new URL(location.href);
    url.searchParams.set("build", String(id));
    history.replaceState(null, "", url);
  }

  /** Stops the build on show; its end arrives as its build.finished, like any other. */
  private async cancel(): Promise<void> {
    if (this.buildId === null) return;
    this.cancelButton.disabled = true;
    try {
      await this.api.call("POST", `/api/builds/${this.buildId}/cancel/`);
    } catch (error) {
      this.buildMessage.textContent = `Could not cancel: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      this.cancelButton.disabled = false;
    }
  }

  /** A band was chosen: light its lines in the Dockerfile and open the inspector on it. */
  private selectStep(step: number | null): void {
    this.selectedStep = step;
    this.stack?.select(step);
    const view = step === null ? undefined : this.store?.steps.get(step);
    if (!view || this.buildId === null) {
      this.inspector.hide();
      this.editor.highlightSteps(this.dockerfile, null);
      return;
    }
    const text = this.editor.text(this.dockerfile) ?? "";
    const range = { from: view.plan.line, to: stepEndLine(text, view.plan.line) };
    if (this.tabs.active !== this.dockerfile) void this.open(this.dockerfile).then(() => this.editor.highlightSteps(this.dockerfile, range, true));
    else this.editor.highlightSteps(this.dockerfile, range, true);
    void this.inspector.show(this.buildId, view);
    // The inspector stands over the stack's side of the window: the band stays where it was, the
    // inspector is brought into view (a phone's sheet, or a pane a short window cut off).
    this.inspector.reveal();
  }

  /** Closes the inspector and gives the focus back to the band it showed. */
  private closeInspector(): void {
    const step = this.selectedStep;
    this.selectStep(null);
    const band = step === null ? null : this.stack?.bandElement(step);
    band?.focus({ preventScroll: false });
  }

  /** The cursor in the Dockerfile lights the band of the step it is in. */
  private cursorMoved(path: string, line: number): void {
    if (path !== this.dockerfile || !this.store || !this.stack) return;
    const text = this.editor.text(path) ?? "";
    const step = stepAtLine(this.store.plan, text, line);
    if (step === null || step.step === this.selectedStep) return;
    this.selectedStep = null;
    this.inspector.hide();
    this.editor.highlightSteps(path, null);
    this.stack.select(step.step);
    this.stack.bandElement(step.step)?.scrollIntoView({ block: "nearest" });
  }

  private schedulePlan(): void {
    if (this.planTimer !== null) clearTimeout(this.planTimer);
    this.planTimer = setTimeout(() => {
      this.planTimer = null;
      void this.predict();
    }, PLAN_DELAY_MS);
  }

  /** Asks the planner what the next build would reuse, and the linters what they think. One
   * question at a time: the server answers one per person, so edits made meanwhile wait for it. */
  private async predict(): Promise<void> {
    if (!this.canEdit) return;
    if (this.predicting) {
      this.predictAgain = true;
      return;
    }
    const text = this.editor.text(this.dockerfile);
    if (text === null) return;
    this.predicting = true;
    try {
      const options = this.options();
      const body = { dockerfile: text, target: options?.target ?? "", build_args: options?.build_args ?? {}, no_cache: options?.no_cache ?? false } satisfies RequestBody<"project_plan">;
      const [plan, lint] = await Promise.allSettled([
        this.api.call<PlanResponse>("POST", `/api/projects/${this.projectId}/plan/`, body),
        this.api.call<Answer<"project_lint">>("POST", `/api/projects/${this.projectId}/lint/`, { dockerfile: text } satisfies RequestBody<"project_lint">),
      ]);
      // What was typed meanwhile gets its own answer; this one would mark the wrong lines.
      if (this.editor.text(this.dockerfile) !== text) return;
      if (plan.status === "fulfilled" && plan.value) this.showPlan(plan.value, text);
      else if (plan.status === "rejected") this.prediction.textContent = `Cannot predict: ${plan.reason instanceof Error ? plan.reason.message : String(plan.reason)}`;
      if (lint.status === "fulfilled" && lint.value) this.editor.setLint(this.dockerfile, lint.value.diagnostics ?? []);
    } finally {
      this.predicting = false;
      if (this.predictAgain) {
        this.predictAgain = false;
        this.schedulePlan();
      }
    }
  }

  private showPlan(plan: PlanResponse, text: string): void {
    const steps = plan.steps ?? [];
    if (!plan.error) window.dispatchEvent(new CustomEvent(PLANNED, { detail: steps }));
    const changed = changedPredictions(this.lastPlan, steps);
    this.lastPlan = steps;
    this.editor.setPredictions(this.dockerfile, lineMarks(steps, text));
    const rebuild = steps.filter((s) => s.prediction === "built");
    // Counted as a build's verdicts are (verdicts.ts): a FROM is the base, a metadata-only step
    // no step the cache could serve.
    const cached = steps.filter((s) => s.prediction === "cached" && s.keyword !== "FROM").length;
    const metadata = steps.filter((s) => s.prediction === "metadata").length;
    const also = metadata ? `; ${metadata} metadata only` : "";
    const note = this.prediction;
    if (plan.error) {
      note.textContent = `Cannot predict: ${plan.error.message}${plan.error.line ? ` (line ${plan.error.line})` : ""}`;
    } else if (rebuild.length === 0) {
      note.textContent = `Next build: all ${cached} steps from the cache${also}.`;
    } else {
      const first = rebuild[0]!;
      note.textContent = `Next build: ${cached} of ${cached + rebuild.length} steps from the cache; from line ${first.line} on, ${rebuild.length} rebuilt${also}.`;
    }
    note.dataset["rebuild"] = rebuild.map((s) => s.step).join(",");
    note.dataset["changed"] = changed.join(",");
  }
}
