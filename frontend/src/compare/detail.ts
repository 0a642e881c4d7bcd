// One row opened: the two instructions word by word, why each side was rebuilt, the context files
// each step read (changed text files line by line) and the files of the two layers. Fetched when
// the row is first opened, kept for the next time.
import { el, formatBytes } from "../format";
import { signedBytes } from "./text";
import type { DiffLine, FileEntry, Row, RowDetail } from "./types";

const CHANGE_TEXT: Record<FileEntry["change"], string> = {
  added: "only in B",
  removed: "only in A",
  changed: "changed",
  same: "same",
};

export class DetailLoader {
  private readonly cache = new Map<number, Promise<RowDetail>>();

  constructor(private readonly url: (row: Row) => string) {}

  /** Opens the row's details under it; with `toggle`, an open row closes instead. */
  toggle(node: HTMLElement, row: Row, toggle: boolean): void {
    const open = node.nextElementSibling;
    if (open instanceof HTMLElement && open.classList.contains("cmp-detail")) {
      if (toggle) {
        open.remove();
        node.setAttribute("aria-expanded", "false");
      }
      return;
    }
    const box = el("div", "cmp-detail");
    box.setAttribute("aria-live", "polite");
    box.append(el("p", "cmp-note", "Loading…"));
    node.after(box);
    node.setAttribute("aria-expanded", "true");
    void this.fill(box, row);
  }

  private async fill(box: HTMLElement, row: Row): Promise<void> {
    let pending = this.cache.get(row.index);
    if (!pending) {
      pending = fetch(this.url(row), { credentials: "same-origin" }).then(async (response) => {
        const body = (await response.json()) as RowDetail & { error?: string };
        if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
        return body;
      });
      this.cache.set(row.index, pending);
    }
    try {
      box.replaceChildren(...render(await pending));
    } catch (error) {
      this.cache.delete(row.index);
      box.replaceChildren(el("p", "cmp-error", `Could not load this row: ${(error as Error).message}`));
    }
  }
}

function render(detail: RowDetail): HTMLElement[] {
  const parts: HTMLElement[] = [];
  const words = el("p", "cmp-words");
  for (const [op, text] of detail.instruction) words.append(el(op === "equal" ? "span" : op === "delete" ? "del" : "ins", "", text));
  parts.push(section("Instruction", words));

  const reasons = el("div", "cmp-reasons");
  for (const [label, step] of [["A", detail.a], ["B", detail.b]] as const) {
    const text = step === null ? "no such step" : step.reason?.message ?? (step.status === "cached" ? "from the cache" : step.status);
    reasons.append(el("p", "", `${label}: ${text}`));
  }
  parts.push(section("Why", reasons));

  if (detail.context.reads) {
    const sources = [detail.context.a, detail.context.b]
      .map((reads, i) => `${i ? "B" : "A"}: ${reads === null ? "—" : reads.from ? `from ${reads.from}, not the context` : reads.heredoc ? "its own text" : reads.sources.join(" ")}`)
      .join(" · ");
    const box = el("div");
    box.append(el("p", "cmp-note", `Sources: ${sources}`), fileTable(detail.context.files, true));
    parts.push(section("Context files it read", box));
  }
  if (detail.layer.layers) {
    const body = detail.layer.error
      ? el("p", "cmp-error", detail.layer.error)
      : detail.layer.same_layer
        ? el("p", "cmp-note", "The same layer on both sides: nothing differs.")
        : fileTable(detail.layer.files ?? [], false, detail.layer.counts?.same);
    const part = section("Layer files", body);
    if (detail.layer.truncated) part.append(el("p", "cmp-note", "More files than these differ; the list stops here."));
    parts.push(part);
  }
  return parts;
}

function section(title: string, body: HTMLElement): HTMLElement {
  const box = el("section", "cmp-detail-part");
  box.append(el("h3", "", title), body);
  return box;
}

/** Files that differ (all of them when none does), with "and N unchanged" below; `unchanged`
 * counts the unchanged ones when the list does not hold them all. */
function fileTable(files: FileEntry[], showDiffs: boolean, unchanged?: number): HTMLElement {
  if (files.length === 0) return el("p", "cmp-note", "No files.");
  const table = el("table", "cmp-files");
  const head = table.createTHead().insertRow();
  for (const title of ["file", "change", "A", "B", "B − A"]) head.append(el("th", "", title));
  const body = table.createTBody();
  const differing = files.filter((f) => f.change !== "same");
  for (const file of differing.length ? differing : files) {
    const tr = body.insertRow();
    tr.className = `change-${file.change}`;
    const sizeDelta = file.a_size !== null && file.b_size !== null ? file.b_size - file.a_size : null;
    tr.append(
      el("td", "cmp-path", file.path),
      el("td", "", CHANGE_TEXT[file.change]),
      el("td", "num", file.a_size === null ? "—" : formatBytes(file.a_size)),
      el("td", "num", file.b_size === null ? "—" : formatBytes(file.b_size)),
      el("td", "num", signedBytes(sizeDelta)),
    );
    if (showDiffs && file.diff) {
      const cell = el("td");
      cell.colSpan = 5;
      cell.append(linesBlock(file.diff));
      body.insertRow().append(cell);
    }
  }
  const same = unchanged ?? files.length - differing.length;
  if (differing.length && same) {
    const cell = el("td", "cmp-note", `and ${same} unchanged`);
    cell.colSpan = 5;
    body.insertRow().append(cell);
  }
  return table;
}

function linesBlock(lines: DiffLine[]): HTMLElement {
  const block = el("pre", "cmp-file-diff");
  for (const line of lines) {
    const mark = line.op === "delete" ? "−" : line.op === "insert" ? "+" : " ";
    block.append(el("span", `op-${line.op}`, `${mark} ${line.text}\n`));
  }
  return block;
}
