// Draws a build as the stack of layers it makes: the base image at the bottom, one band per step
// above it, and the container's writable layer dotted on top. Every planned step gets its band
// when the build starts and the band fills in as events arrive, so nothing moves while it builds.
import type { Reason } from "./protocol";
import type { BuildStore, StepView } from "./store";
import { el, formatBytes, formatDuration } from "./format";

const STATUS_TEXT: Record<StepView["state"], string> = {
  waiting: "waiting",
  running: "running",
  cached: "cached",
  built: "rebuilt",
  skipped: "skipped",
  failed: "failed",
};

// Keys of a reason that have their own line, so the generic detail list leaves them out.
const SHOWN_ELSEWHERE = new Set(["code", "message", "counts", "parent_step", "cause_step"]);

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

export class LayerStackView {
  private readonly bands = new Map<number, Band>();
  private readonly summary: HTMLElement;
  private readonly stacks: HTMLElement;
  private planKey = "";

  constructor(private readonly root: HTMLElement, private readonly store: BuildStore) {
    this.summary = el("p", "build-summary");
    this.summary.setAttribute("role", "status");
    this.summary.setAttribute("aria-live", "polite");
    this.stacks = el("div", "stacks");
    root.replaceChildren(this.summary, this.stacks);
    store.subscribe(() => this.render());
    this.render();
  }

  render(): void {
    const key = this.store.plan.map((p) => `${p.step}:${p.stage}`).join(",");
    if (key !== this.planKey) this.layout(key);
    const largest = Math.max(1, ...[...this.store.steps.values()].map((v) => sizeOf(v)));
    const firstMiss = this.firstMiss();
    for (const [step, view] of this.store.steps) {
      const band = this.bands.get(step);
      if (band) this.fill(band, view, largest, step === firstMiss);
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
    for (const [stage, views] of stages) {
      const column = el("section", "stack");
      column.setAttribute("aria-label", `Stage ${stage}`);
      column.append(el("h2", "stack-title", stages.size > 1 ? `Stage ${stage}` : "Image layers"));
      const list = el("ol", "bands");
      // The list reads top-down in the source order; CSS turns it so the base sits at the bottom.
      for (const view of views) {
        const band = this.makeBand(view);
        this.bands.set(view.plan.step, band);
        list.append(band.root);
      }
      const container = el("li", "band band-container", "container layer (writable, made when the image runs)");
      list.append(container);
      column.append(list);
      columns.push(column);
    }
    this.stacks.replaceChildren(...columns);
  }

  private makeBand(view: StepView): Band {
    const root = el("li", "band");
    root.dataset["step"] = String(view.plan.step);
    const head = el("div", "band-head");
    const number = el("span", "band-step", `#${view.plan.step}`);
    const instruction = el("code", "band-instruction", view.plan.instruction);
    instruction.title = `line ${view.plan.line}`;
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
    const metadata = f?.metadata === true;
    // Redraw a band only when what it shows changed, so an open <details> stays open.
    const stamp = `${view.state}|${f?.seq ?? 0}|${view.log.length}|${isFirstMiss}|${largest}`;
    if (stamp === band.rendered) return;
    band.rendered = stamp;

    band.root.className = `band status-${view.state}${metadata ? " band-metadata" : ""}${keyword === "FROM" ? " band-base" : ""}`;
    // The cascade's cause sits in the status line, so a rebuilt band is as tall as any other.
    const cause = f && f.status === "built" && f.reason ? causeStep(f.reason) : null;
    band.status.textContent = isFirstMiss
      ? "rebuilt · first change"
      : cause !== null
        ? `rebuilt · caused by step ${cause}`
        : STATUS_TEXT[view.state];
    band.duration.textContent = f ? formatDuration(f.duration_ms) : "";

    const size = sizeOf(view);
    band.bar.style.width = size > 0 ? `max(2px, ${((size / largest) * 100).toFixed(2)}%)` : "0";
    if (metadata) {
      band.size.textContent = "metadata only";
      band.files.textContent = "";
    } else if (keyword === "FROM" && f?.base) {
      const ref = typeof f.base["ref"] === "string" ? f.base["ref"] : "base";
      band.size.textContent = `base image ${ref} · ${formatBytes(size)}`;
      band.files.textContent = "";
    } else if (f?.layer) {
      band.size.textContent = formatBytes(f.layer.size);
      const { added, modified, deleted } = f.layer.files;
      band.files.textContent = `+${added} ~${modified} -${deleted}`;
      band.files.title = `${added} added, ${modified} modified, ${deleted} deleted`;
    } else {
      band.size.textContent = f ? "no file changes" : "";
      band.files.textContent = "";
    }

    const reason = f && f.status !== "cached" ? f.reason : null;
    band.reason.textContent = reason
      ? reason.message
      : f?.error
        ? String(f.error["message"] ?? "")
        : f?.status === "cached"
          ? "Reused from the cache: nothing this step depends on changed."
          : "";
    // The sentence may be clamped to keep bands one height; the whole of it stays a tooltip away.
    band.reason.title = band.reason.textContent;
    band.more.replaceChildren(...this.details(reason, view));
  }

  private details(reason: Reason | null, view: StepView): HTMLElement[] {
    const out: HTMLElement[] = [];
    if (reason) {
      const rows = Object.entries(reason).filter(([k, v]) => !SHOWN_ELSEWHERE.has(k) && !isEmpty(v));
      if (rows.length > 0) {
        const box = el("details", "band-details");
        box.append(el("summary", "", "details"));
        const list = el("dl");
        for (const [k, v] of rows) list.append(el("dt", "", k.replace(/_/g, " ")), detailValue(v));
        box.append(list);
        out.push(box);
      }
    }
    if (view.log) {
      const box = el("details", "band-log");
      box.append(el("summary", "", view.logTruncated ? "output (latest part)" : "output"));
      box.append(el("pre", "", view.log));
      out.push(box);
    }
    return out;
  }

  /** The first step rebuilt for its own reason, not because a layer below it was rebuilt. */
  private firstMiss(): number | null {
    for (const view of this.store.steps.values()) {
      const f = view.finished;
      if (f && f.status === "built" && f.reason && causeStep(f.reason) === null) return view.plan.step;
    }
    return null;
  }

  private summaryText(): string {
    const done = this.store.finished;
    const total = this.store.steps.size;
    if (done) {
      const cache = done.cache ? ` · ${done.cache.hits} cached, ${done.cache.misses} rebuilt` : "";
      const size = done.image ? ` · image ${formatBytes(done.image.size)}` : "";
      return `Build ${done.status} in ${formatDuration(done.duration_ms)}${cache}${size}`;
    }
    if (total === 0) return "No build yet.";
    const finished = [...this.store.steps.values()].filter((v) => v.finished).length;
    return `Building… ${finished} of ${total} steps done`;
  }
}

function sizeOf(view: StepView): number {
  const f = view.finished;
  if (!f) return 0;
  if (f.layer) return f.layer.size;
  if (f.base && typeof f.base["size"] === "number") return f.base["size"];
  return 0;
}

function causeStep(reason: Reason): number | null {
  const cause = reason["cause_step"] ?? reason["parent_step"];
  return typeof cause === "number" ? cause : null;
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0);
}

function detailValue(v: unknown): HTMLElement {
  const dd = el("dd");
  if (Array.isArray(v)) {
    const ul = el("ul");
    for (const item of v) ul.append(el("li", "", typeof item === "string" ? item : JSON.stringify(item)));
    dd.append(ul);
  } else if (typeof v === "object" && v !== null) {
    dd.append(el("pre", "", JSON.stringify(v, null, 2)));
  } else {
    dd.append(el("code", "", String(v)));
  }
  return dd;
}
