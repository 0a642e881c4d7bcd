// Draws a comparison: the summary cards, the first divergence called out, the aligned rows (one
// per step pair, gaps where a build has no such step) and the Dockerfiles' diff beside them.
// Selecting a row lights its Dockerfile lines and opens its details; clicking a line selects
// its row.
import { el, formatBytes, formatDuration } from "../format";
import { DetailLoader } from "./detail";
import { linesOfRow, rowOfLine } from "./links";
import { STATUS_TEXT, signedBytes, signedDuration, summaryCards } from "./text";
import type { Comparison, Row, SideStep } from "./types";

const KIND_TEXT: Record<Row["kind"], string> = {
  same: "",
  changed: "edited",
  moved: "moved",
  removed: "only in A",
  added: "only in B",
};

export class ComparisonView {
  private readonly rowEls = new Map<number, HTMLElement>();
  private lineEls: HTMLElement[] = [];
  private selected: number | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly data: Comparison,
    private readonly details: DetailLoader,
  ) {}

  render(): void {
    const body = el("div", "cmp-body");
    body.append(this.rowsPanel(), this.dockerfilePanel());
    this.root.append(this.summary(), this.divergence(), body);
  }

  private summary(): HTMLElement {
    const cards = el("div", "cmp-summary");
    for (const card of summaryCards(this.data)) {
      const box = el("div", "cmp-card");
      box.append(el("h2", "", card.label));
      const values = el("p", "cmp-card-values");
      values.append(el("span", "side-a", card.a), el("span", "cmp-vs", "vs"), el("span", "side-b", card.b));
      box.append(values, el("p", "cmp-card-note", card.note));
      cards.append(box);
    }
    return cards;
  }

  private divergence(): HTMLElement {
    const box = el("p", "cmp-divergence");
    box.setAttribute("role", "note");
    const first = this.data.summary.first_divergence;
    const row = first === null ? undefined : this.data.rows[first];
    if (!row) {
      const waiting = this.data.rows.some((r) => r.a?.status === "pending" || r.b?.status === "pending");
      box.textContent = waiting
        ? "So far the two builds have not parted; the rest is still to come."
        : "The two builds never part: every step has the same cache key on both sides.";
      return box;
    }
    const step = row.b ?? row.a;
    box.append(el("strong", "", "The builds part at "), el("code", "", step?.instruction ?? ""));
    const why = this.data.summary.parting?.message;
    if (why) box.append(el("span", "cmp-divergence-why", ` — ${why}`));
    box.addEventListener("click", () => this.select(row.index, { open: true, scroll: true }));
    return box;
  }

  private rowsPanel(): HTMLElement {
    const panel = el("section", "cmp-rows");
    panel.setAttribute("aria-label", "Steps side by side");
    const head = el("div", "cmp-row cmp-row-head");
    head.append(
      el("span", "cmp-n", "#"),
      el("span", "cmp-side side-a", `A · #${this.data.a.number} ${this.data.a.owner}/${this.data.a.project_name}${sharedNote(this.data.a)}`),
      el("span", "cmp-mid", "key"),
      el("span", "cmp-side side-b", `B · #${this.data.b.number} ${this.data.b.owner}/${this.data.b.project_name}${sharedNote(this.data.b)}`),
      el("span", "cmp-delta", "B − A"),
    );
    panel.append(head);
    const headed = withStageHeadings(this.data.rows);
    // One unnamed stage on both sides needs no heading.
    const plain = headed.filter(([heading]) => heading).length === 1 && headed[0]?.[0] === "Stage 0";
    for (const [heading, row] of headed) {
      if (heading && !plain) panel.append(el("div", "cmp-stage", heading));
      const node = this.rowEl(row);
      this.rowEls.set(row.index, node);
      panel.append(node);
    }
    return panel;
  }

  private rowEl(row: Row): HTMLElement {
    const node = el("div", `cmp-row kind-${row.kind}`);
    node.dataset["row"] = String(row.index);
    node.classList.toggle("parted", row.parted);
    node.classList.toggle("first-divergence", row.first_divergence);
    node.tabIndex = 0;
    node.setAttribute("role", "button");
    node.setAttribute("aria-expanded", "false");
    const numbers = el("span", "cmp-n", `${row.a?.step ?? "–"} · ${row.b?.step ?? "–"}`);
    const mid = el("span", "cmp-mid");
    const key = el("span", "cmp-key", row.same_key === true ? "=" : row.same_key === false ? "≠" : "·");
    key.title =
      row.same_key === true ? "same cache key" : row.same_key === false ? "different cache keys" : "no key to compare";
    mid.append(key);
    if (KIND_TEXT[row.kind]) mid.append(el("span", "cmp-kind", KIND_TEXT[row.kind]));
    if (row.first_divergence) mid.append(el("span", "cmp-first", "first divergence"));
    const shared = sharedLayerOf(row, this.data);
    if (shared) {
      node.classList.add("shared-layer");
      const mark = el("span", "cmp-shared", "shared layer");
      mark.title = `both images hold this layer: ${formatBytes(shared.size)} stored once`;
      mid.append(mark);
    } else if (sharesBase(row, this.data)) {
      node.classList.add("shared-layer");
      const mark = el("span", "cmp-shared", "shared base");
      mark.title = "both images start from the same base image: its layers are stored once";
      mid.append(mark);
    }
    const delta = el("span", "cmp-delta");
    delta.append(el("span", "", signedDuration(row.duration_delta_ms)), el("span", "", signedBytes(row.size_delta)));
    node.append(numbers, side(row.a, "a"), mid, side(row.b, "b"), delta);
    node.addEventListener("click", () => this.select(row.index, { open: true, toggle: true }));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.select(row.index, { open: true, toggle: true });
      }
    });
    return node;
  }

  private dockerfilePanel(): HTMLElement {
    const panel = el("section", "cmp-dockerfile");
    panel.setAttribute("aria-label", "The Dockerfiles, line by line");
    panel.append(el("h2", "", `${this.data.a.dockerfile_path} · A → B`));
    const list = el("ol", "cmp-lines");
    const lines = this.data.dockerfiles.diff.lines;
    this.lineEls = lines.map((line, i) => {
      const item = el("li", `cmp-line op-${line.op}`);
      item.dataset["index"] = String(i);
      item.append(
        el("span", "ln ln-a", line.a === null ? "" : String(line.a)),
        el("span", "ln ln-b", line.b === null ? "" : String(line.b)),
        el("span", "ln-op", line.op === "delete" ? "−" : line.op === "insert" ? "+" : " "),
        el("code", "", line.text || " "),
      );
      item.tabIndex = 0;
      const find = (): void => {
        const row = rowOfLine(line, this.data.rows);
        if (row) this.select(row.index, { scroll: true });
      };
      item.addEventListener("click", find);
      item.addEventListener("keydown", (event) => {
        if (event.key === "Enter") find();
      });
      list.append(item);
      return item;
    });
    panel.append(list);
    if (this.data.dockerfiles.diff.truncated) panel.append(el("p", "cmp-note", "The rest of the diff is left out."));
    return panel;
  }

  /** Marks the row and its lines; `open` shows its details under it (`toggle`: or hides them). */
  select(index: number, how: { open?: boolean; toggle?: boolean; scroll?: boolean } = {}): void {
    const row = this.data.rows[index];
    const node = this.rowEls.get(index);
    if (!row || !node) return;
    if (this.selected !== null) this.rowEls.get(this.selected)?.classList.remove("selected");
    this.selected = index;
    node.classList.add("selected");
    const linked = new Set(linesOfRow(row, this.data.dockerfiles.diff.lines));
    this.lineEls.forEach((line, i) => line.classList.toggle("linked", linked.has(i)));
    const firstLine = this.lineEls[[...linked][0] ?? -1];
    firstLine?.scrollIntoView({ block: "nearest" });
    if (how.scroll) node.scrollIntoView({ block: "center" });
    if (how.open) this.details.toggle(node, row, how.toggle === true);
  }
}

/** Each row with the heading to draw above it ("" for none): a heading wherever the pair of
 * stages changes; a step only one build has stays under its stage's heading. */
export function withStageHeadings(rows: readonly Row[]): [string, Row][] {
  let current: { a: string | null; b: string | null } | null = null;
  return rows.map((row) => {
    const fits =
      current !== null && (row.a === null || row.a.stage === current.a) && (row.b === null || row.b.stage === current.b);
    if (fits) return ["", row];
    current = { a: row.a?.stage ?? null, b: row.b?.stage ?? null };
    return [stageHeading(current.a, current.b), row];
  });
}

function stageHeading(a: string | null, b: string | null): string {
  if (a === null) return `Stage ${b} (only in B)`;
  if (b === null) return `Stage ${a} (only in A)`;
  return a === b ? `Stage ${a}` : `Stage ${a} → ${b}`;
}

function side(step: SideStep | null, which: "a" | "b"): HTMLElement {
  const cell = el("div", `cmp-side side-${which}`);
  if (step === null) {
    cell.classList.add("cmp-gap");
    cell.append(el("span", "", which === "a" ? "not in build A" : "not in build B"));
    return cell;
  }
  const top = el("div", "cmp-step-top");
  const status = el("span", `cmp-status status-${step.status}`, STATUS_TEXT[step.status]);
  top.append(status, el("code", "cmp-instruction", step.instruction));
  cell.append(top);
  const meta = el("div", "cmp-meta");
  meta.append(el("span", "", `line ${step.line}`), el("span", "", formatDuration(step.duration_ms)));
  if (step.layer) meta.append(el("span", "", formatBytes(step.size)));
  cell.append(meta);
  if (step.reason && step.status !== "cached") cell.append(el("p", "cmp-reason", step.reason.message));
  return cell;
}

/** The layer both sides' steps made, when it is one and the same layer of both images. */
export function sharedLayerOf(row: Row, data: Comparison): { digest: string; size: number } | null {
  const digest = row.a?.layer?.digest;
  if (!digest || digest !== row.b?.layer?.digest) return null;
  return data.summary.shared_layers?.layers?.find((layer) => layer.digest === digest) ?? null;
}

/** Whether the row is both builds' FROM of one and the same base image, whose layers both share. */
export function sharesBase(row: Row, data: Comparison): boolean {
  const isFrom = (step: SideStep | null): boolean => /^from\s/i.test(step?.instruction ?? "");
  return isFrom(row.a) && isFrom(row.b) && row.same_key === true && (data.summary.shared_layers?.count ?? 0) > 0;
}

/** " · cache shared by the class …" for a side a class's shared cache served, else "". */
function sharedNote(side: { cache_scope?: { kind: string; label: string } }): string {
  return side.cache_scope?.kind === "class" ? ` · ${side.cache_scope.label}` : "";
}
