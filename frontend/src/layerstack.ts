// Draws a build as the stack of layers it makes: the base image at the bottom, one band per step
// above it, and the container's writable layer dotted on top. Every planned step gets its band
// when the build starts and the band fills in as events arrive, so nothing moves while it builds.
// A multi-stage build gets one stack per stage, side by side, with an arrow for each COPY --from.
import type { BuildFinished, Reason } from "./protocol";
import type { BuildStore, StepView } from "./store";
import { el, formatBytes, formatDuration } from "./format";
import { hasDetails, reasonDetails } from "./reasons";
import { drawArrows, type Arrow } from "./arrows";
import { copyFromSource, resolveStage } from "./dockerlines";
import { pullOf } from "./pull";
// A band says its state in the words every page uses (verdicts.ts).
import { countsText, STATUS_TEXT, tally, verdictOf } from "./verdicts";

interface Band {
  root: HTMLElement;
  status: HTMLElement;
  duration: HTMLElement;
  bar: HTMLElement;
  size: HTMLElement;
  files: HTMLElement;
  reason: HTMLElement;
  more: HTMLElement;
  rendered: string;
}

export interface LayerStackOptions {
  /** Called when a person clicks a band or presses Enter on it. */
  onSelect?: (step: number) => void;
}

export class LayerStackView {
  private readonly bands = new Map<number, Band>();
  private readonly summary: HTMLElement;
  private readonly stacks: HTMLElement;
  private readonly arrowLayer: SVGSVGElement;
  private arrows: Arrow[] = [];
  private planKey = "";
  private selected: number | null = null;
  private readonly unsubscribe: () => void;
  private readonly resize: ResizeObserver | null;

  constructor(
    private readonly root: HTMLElement,
    private readonly store: BuildStore,
    private readonly options: LayerStackOptions = {},
  ) {
    this.summary = el("p", "build-summary");
    this.summary.setAttribute("role", "status");
    this.summary.setAttribute("aria-live", "polite");
    this.stacks = el("div", "stacks");
    this.arrowLayer = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.arrowLayer.classList.add("stage-arrows");
    this.arrowLayer.setAttribute("aria-hidden", "true");
    root.replaceChildren(this.summary, this.stacks);
    this.unsubscribe = store.subscribe(() => this.render());
    // Bands keep their place while a build runs, but a wider window or large text moves them.
    this.resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => this.redrawArrows());
    this.resize?.observe(this.stacks);
    this.render();
  }

  destroy(): void {
    this.unsubscribe();
    this.resize?.disconnect();
  }

  /** Marks one band as the one being looked at (null: none). */
  select(step: number | null): void {
    this.selected = step;
    for (const [n, band] of this.bands) {
      band.root.classList.toggle("selected", n === step);
      band.root.setAttribute("aria-pressed", String(n === step));
    }
  }

  bandElement(step: number): HTMLElement | null {
    return this.bands.get(step)?.root ?? null;
  }

  render(): void {
    const key = this.store.plan.map((p) => `${p.step}:${p.stage}`).join(",");
    if (key !== this.planKey) this.layout(key);
    const largest = Math.max(1, ...[...this.store.steps.values()].map((v) => sizeOf(v)));
    const firstMisses = this.firstMisses();
    for (const [step, view] of this.store.steps) {
      const band = this.bands.get(step);
      if (band) this.fill(band, view, largest, firstMisses.has(step));
    }
    this.summary.textContent = this.summaryText();
  }

  /** Builds one column per stage, bottom-up, with a band for every planned step. */
  private layout(key: string): void {
    this.planKey = key;
    this.bands.clear();
    const stages = new Map<string, StepView[]>();
    for (const view of this.store.steps.values()) {
      const list = stages.get(view.plan.stage) ?? [];
      list.push(view);
      stages.set(view.plan.stage, list);
    }
    const columns: HTMLElement[] = [];
    const stageNames = [...stages.keys()];
    const topOfStage = new Map<string, number>();
    this.arrows = [];
    for (const [stage, views] of stages) {
      const column = el("section", "stack");
      column.setAttribute("aria-label", stages.size > 1 ? `Stage ${stage}` : "Image layers");
      column.dataset["stage"] = stage;
      const title = stages.size > 1 ? `Stage ${stage}${stage === stageNames.at(-1) ? " (the image)" : ""}` : "Image layers";
      column.append(el("h2", "stack-title", title));
      const list = el("ol", "bands");
      // The list reads top-down in the source order; CSS turns it so the base sits at the bottom.
      for (const view of views) {
        const band = this.makeBand(view);
        this.bands.set(view.plan.step, band);
        list.append(band.root);
        const from = copyFromSource(view.plan.instruction);
        const source = from === null ? null : resolveStage(from, stageNames);
        if (source !== null && source !== stage) this.arrows.push({ fromStage: source, toStep: view.plan.step });
      }
      topOfStage.set(stage, views.at(-1)?.plan.step ?? 0);
      const container = el("li", "band band-container", "container layer (writable, made when the image runs)");
      list.append(container);
      column.append(list);
      columns.push(column);
    }
    for (const arrow of this.arrows) arrow.fromStep = topOfStage.get(arrow.fromStage);
    this.stacks.replaceChildren(...columns, this.arrowLayer);
    this.stacks.classList.toggle("multi-stage", stages.size > 1);
    this.select(this.selected);
    requestAnimationFrame(() => this.redrawArrows());
  }

  private redrawArrows(): void {
    drawArrows(this.arrowLayer, this.stacks, this.arrows, (step) => this.bands.get(step)?.root ?? null);
  }

  private makeBand(view: StepView): Band {
    const root = el("li", "band");
    root.dataset["step"] = String(view.plan.step);
    root.tabIndex = 0;
    root.setAttribute("role", "button");
    root.setAttribute("aria-pressed", "false");
    root.setAttribute("aria-label", `Step ${view.plan.step}, line ${view.plan.line}: ${view.plan.instruction}`);
    const select = (): void => this.options.onSelect?.(view.plan.step);
    root.addEventListener("click", (ev) => {
      // A click on the band's own controls (details, links) is theirs, not the band's.
      if ((ev.target as HTMLElement).closest("summary, a, button, details[open] > :not(summary)")) return;
      select();
    });
    root.addEventListener("keydown", (ev) => {
      if (ev.target !== root || (ev.key !== "Enter" && ev.key !== " ")) return;
      ev.preventDefault();
      select();
    });
    const head = el("div", "band-head");
    const number = el("span", "band-step", `#${view.plan.step}`);
    const instruction = el("code", "band-instruction", view.plan.instruction);
    instruction.title = `line ${view.plan.line}: ${view.plan.instruction}`;
    const status = el("span", "band-status");
    const duration = el("span", "band-duration");
    head.append(number, instruction, status, duration);
    const meta = el("div", "band-meta");
    const barTrack = el("span", "band-bar-track");
    barTrack.setAttribute("aria-hidden", "true");
    const bar = el("span", "band-bar");
    barTrack.append(bar);
    const size = el("span", "band-size");
    const files = el("span", "band-files");
    meta.append(barTrack, size, files);
    const reason = el("p", "band-reason");
    const more = el("div", "band-more");
    root.append(head, meta, reason, more);
    return { root, status, duration, bar, size, files, reason, more, rendered: "" };
  }

  private fill(band: Band, view: StepView, largest: number, isFirstMiss: boolean): void {
    const f = view.finished;
    const keyword = (f?.keyword ?? view.plan.instruction.split(/\s+/)[0] ?? "").toUpperCase();
    // Known from the keyword before the step runs, so a thin band is thin from the start.
    const metadata = f ? f.metadata === true : METADATA_KEYWORDS.has(keyword);
    // Redraw a band only when what it shows changed, so an open <details> stays open.
    const pull = keyword === "FROM" ? pullOf(this.store.transfers.values(), view.plan.step) : null;
    const stamp = `${view.state}|${f?.seq ?? 0}|${view.log.length}|${isFirstMiss}|${largest}|${pull?.current}`;
    if (stamp === band.rendered) return;
    band.rendered = stamp;

    const cause = f && f.status === "built" && f.reason ? causeStep(f.reason) : null;
    const classes = ["band", `status-${view.state}`];
    if (metadata) classes.push("band-metadata");
    if (keyword === "FROM") classes.push("band-base");
    if (isFirstMiss) classes.push("first-miss");
    if (cause !== null) classes.push("cascade");
    if (view.plan.step === this.selected) classes.push("selected");
    band.root.className = classes.join(" ");
    // The cascade's cause sits in the status line, so a rebuilt band is as tall as any other.
    const isNew = f?.reason?.code === "first_build" || f?.reason?.code === "new_step";
    band.status.textContent = isFirstMiss
      ? isNew
        ? "built · first time"
        : "built · first change"
      : cause !== null
        ? `built · caused by step ${cause}`
        : pull !== null && (view.state === "running" || view.state === "cached")
          ? pull.done ? "pulled" : "pulling"
          : bandVerdict(view); // a FROM is its stage's base, not a step the cache served
    band.duration.textContent = f ? formatDuration(f.duration_ms) : "";

    const size = sizeOf(view);
    band.bar.style.width = view.state === "running" ? "" : size > 0 ? `max(2px, ${((size / largest) * 100).toFixed(2)}%)` : "0";
    if (metadata) {
      band.size.textContent = "metadata only";
      band.files.textContent = "";
    } else if (pull !== null && !pull.done) {
      band.size.textContent = `pulling ${pull.image} · ${formatBytes(pull.current)} of ${formatBytes(pull.total)}`;
      band.files.textContent = "";
    } else if (keyword === "FROM" && f?.base) {
      const ref = typeof f.base["ref"] === "string" ? f.base["ref"] : "base";
      band.size.textContent = `base image ${ref} · ${formatBytes(size)}`;
      band.files.textContent = "";
    } else if (f?.layer) {
      band.size.textContent = formatBytes(f.layer.size);
      band.files.textContent = filesText(f.layer.files);
    } else {
      band.size.textContent = f ? "no file changes" : "";
      band.files.textContent = "";
    }

    const reason = f && f.status !== "cached" ? f.reason : null;
    band.reason.textContent = reason
      ? reason.message
      : f?.error
        ? String(f.error["message"] ?? "")
        : pull !== null && f?.status === "cached"
          ? `Pulled from its registry: ${pull.layers === 1 ? "1 layer" : `${pull.layers} layers`}, ` +
            `${formatBytes(pull.total)} the store lacked.`
          : f?.status === "cached" && keyword !== "FROM"
            ? "Reused from the cache: nothing this step depends on changed."
            : f?.status === "metadata"
              ? "Changes only the image's configuration: no layer, nothing to cache."
              : "";
    // The sentence may be clamped to keep bands one height; the whole of it stays a tooltip away.
    band.reason.title = band.reason.textContent;
    band.more.replaceChildren(...this.details(reason, view));
  }

  private details(reason: Reason | null, view: StepView): HTMLElement[] {
    const out: HTMLElement[] = [];
    if (reason && hasDetails(reason)) {
      const box = el("details", "band-details");
      box.append(el("summary", "", "why, in detail"), ...reasonDetails(reason));
      out.push(box);
    }
    if (view.log) {
      const box = el("details", "band-log");
      box.append(el("summary", "", view.logTruncated ? "output (latest part)" : "output"));
      box.append(el("pre", "", view.log));
      out.push(box);
    }
    return out;
  }

  /** In each stage, the first step rebuilt for its own reason, not because a layer below it was
   * rebuilt: where that stage's cascade starts. */
  private firstMisses(): Set<number> {
    const found = new Map<string, number>();
    for (const view of this.store.steps.values()) {
      const f = view.finished;
      if (found.has(view.plan.stage) || !f || f.status !== "built" || !f.reason || causeStep(f.reason) !== null) continue;
      found.set(view.plan.stage, view.plan.step);
    }
    return new Set(found.values());
  }

  private summaryText(): string {
    const done = this.store.finished;
    const total = this.store.steps.size;
    if (done) return finishedSummary(done, this.store.steps.values());
    if (total === 0) return "No build yet.";
    const finished = [...this.store.steps.values()].filter((v) => v.finished).length;
    return `Building… ${finished} of ${total} steps done`;
  }
}

// Instructions that only change the image's configuration, never its files.
const METADATA_KEYWORDS = new Set(["CMD", "ENTRYPOINT", "ENV", "ARG", "LABEL", "EXPOSE", "USER", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "VOLUME", "ONBUILD", "MAINTAINER"]);

/** A finished build's summary line: its outcome, time, the count of every verdict (counted from
 * the steps' events by the one function every page uses), its image, its error. */
export function finishedSummary(done: BuildFinished, steps: Iterable<StepView>): string {
  const finished = [...steps].flatMap((v) => (v.finished ? [v.finished] : []));
  const counts = ` · ${countsText(tally(finished))}`;
  const size = done.image ? ` · image ${formatBytes(done.image.size)}` : "";
  const error = done.error && typeof done.error["message"] === "string" ? ` · ${done.error["message"]}` : "";
  return `Build ${done.status} in ${formatDuration(done.duration_ms)}${counts}${size}${error}`;
}

/** The words a finished band's status line starts with: its verdict, or "base" for a FROM. */
export function bandVerdict(view: StepView): string {
  const f = view.finished;
  if (!f) return STATUS_TEXT[view.state];
  // A FROM is never counted: its band says it is the base, greyed when its stage is not needed.
  return verdictOf(f) === null && f.keyword === "FROM" ? "base" : STATUS_TEXT[view.state];
}

/** "2 added · 1 modified", leaving out the kinds of change that did not happen. */
export function filesText(files: { added: number; modified: number; deleted: number }): string {
  const parts = (["added", "modified", "deleted"] as const).filter((k) => files[k] > 0).map((k) => `${files[k]} ${k}`);
  return parts.length > 0 ? parts.join(" · ") : "no files changed";
}

function sizeOf(view: StepView): number {
  const f = view.finished;
  if (!f) return 0;
  if (f.layer) return f.layer.size;
  if (f.base && typeof f.base.size === "number") return f.base.size;
  return 0;
}

function causeStep(reason: Reason): number | null {
  const cause = "cause_step" in reason ? reason.cause_step : null;
  return cause ?? ("parent_step" in reason ? reason.parent_step : null);
}
