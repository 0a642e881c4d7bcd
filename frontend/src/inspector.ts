// The layer inspector: what one step did. The files its layer added, changed and deleted (as a
// tree, with sizes), its output, and what its cache key was made from, so "why was this rebuilt"
// can be checked against the inputs themselves.
import { Api, ApiError, type Answer, type Schemas } from "./api";
import { el, formatBytes, formatDuration, visibleName } from "./format";
import type { StepView } from "./store";
import { buildTree, type TreeNode } from "./tree";
import { reasonDetails } from "./reasons";
import { VERDICT_WORDS, verdictOf } from "./verdicts";

export type LayerFile = Schemas["LayerFile"];
export type StepDetail = Answer<"build_step">;

const CHANGE_MARK: Record<LayerFile["change"], string> = { added: "+", modified: "~", deleted: "−" };

export class Inspector {
  private request: AbortController | null = null;

  constructor(private readonly root: HTMLElement, private readonly api: Api, private readonly onClose: () => void) {
    root.hidden = true;
  }

  hide(): void {
    this.request?.abort();
    this.root.hidden = true;
  }

  async show(buildId: number, view: StepView): Promise<void> {
    this.request?.abort();
    const controller = new AbortController();
    this.request = controller;
    this.root.hidden = false;
    const f = view.finished;
    const close = el("button", "icon-button", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Close the layer inspector");
    close.addEventListener("click", () => this.onClose());
    const heading = el("h2", "panel-title", `Step ${view.plan.step} · line ${view.plan.line}`);
    heading.id = "inspector-title";
    this.root.setAttribute("aria-labelledby", heading.id);
    const head = el("div", "inspector-head");
    head.append(heading, close);
    const body = el("div", "inspector-body");
    body.append(el("pre", "inspector-instruction", view.plan.instruction));
    const facts = [f ? (verdictOf(f) === null ? "base" : VERDICT_WORDS[f.status]) : view.state];
    if (f) facts.push(formatDuration(f.duration_ms));
    if (f?.layer) facts.push(`layer ${formatBytes(f.layer.size)}`);
    if (f?.metadata) facts.push("metadata only: no files changed");
    body.append(el("p", "inspector-facts", facts.join(" · ")));
    if (f?.reason && f.status !== "cached") body.append(el("p", "inspector-reason", f.reason.message), ...reasonDetails(f.reason));
    const filesBox = section("Files in this layer", el("p", "muted", "Loading…"));
    const logBox = section("Output", logBlock(view.log, view.logTruncated));
    const inputsBox = section("Cache key made from", el("p", "muted", "Loading…"));
    body.append(filesBox, logBox, inputsBox);
    this.root.replaceChildren(head, body);

    if (!f) {
      filesBox.lastElementChild?.replaceWith(el("p", "muted", "The step has not finished yet."));
      inputsBox.lastElementChild?.replaceWith(el("p", "muted", "The step has not finished yet."));
      return;
    }
    try {
      const detail = await this.api.call<StepDetail>("GET", `/api/builds/${buildId}/steps/${view.plan.step}/`, undefined, controller.signal);
      filesBox.lastElementChild?.replaceWith(fileTree(detail.files ?? [], detail.files_truncated === true, f.metadata));
      if (detail.log && detail.log.length > 0) logBox.lastElementChild?.replaceWith(logBlock(detail.log.map((l) => l.text).join(""), false));
      inputsBox.lastElementChild?.replaceWith(inputs(detail.cache_inputs ?? null));
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") return;
      const text = error instanceof ApiError && error.status === 404 ? "This step's layer is no longer kept." : `Could not load the layer: ${String(error instanceof Error ? error.message : error)}`;
      filesBox.lastElementChild?.replaceWith(el("p", "muted", text));
      inputsBox.lastElementChild?.replaceWith(el("p", "muted", f.cache_key ? `cache key ${f.cache_key}` : "No cache key."));
    }
  }
}

function section(title: string, content: HTMLElement): HTMLElement {
  const box = el("section", "inspector-section");
  box.append(el("h3", "", title), content);
  return box;
}

function logBlock(text: string, truncated: boolean): HTMLElement {
  if (!text) return el("p", "muted", "No output.");
  const pre = el("pre", "inspector-log", text);
  if (!truncated) return pre;
  const box = el("div");
  box.append(el("p", "muted", "Only the latest part of the output is kept."), pre);
  return box;
}

function fileTree(files: LayerFile[], truncated: boolean, metadata: boolean): HTMLElement {
  if (files.length === 0) return el("p", "muted", metadata ? "Metadata only: this step changes no files." : "No files changed.");
  const tree = buildTree(files);
  const list = el("ul", "layer-files");
  list.setAttribute("role", "tree");
  list.setAttribute("aria-label", "Files this layer changed");
  list.append(...tree.children.map((n) => fileNode(n)));
  const box = el("div");
  const counts = { added: 0, modified: 0, deleted: 0 };
  for (const f of files) if (f.kind !== "dir") counts[f.change]++;
  box.append(el("p", "muted", `${counts.added} added, ${counts.modified} modified, ${counts.deleted} deleted`), list);
  if (truncated) box.append(el("p", "muted", "The list is cut short: the layer changes more files than are shown."));
  return box;
}

function fileNode(node: TreeNode<LayerFile>): HTMLElement {
  const li = el("li");
  li.setAttribute("role", "treeitem");
  const item = node.item;
  const change = item?.change ?? "";
  if (change) li.classList.add(`change-${change}`);
  const mark = el("span", "change-mark", item ? CHANGE_MARK[item.change] : " ");
  mark.setAttribute("aria-label", change || "folder");
  const isDir = node.children.length > 0 || item?.kind === "dir";
  const name = el("span", "layer-file-name", isDir ? `${visibleName(node.name)}/` : visibleName(node.name));
  li.append(mark, name);
  if (item && !isDir) li.append(el("span", "file-size", item.change === "deleted" ? "deleted" : formatBytes(item.size)));
  if (item?.kind === "symlink") li.append(el("span", "muted", " (link)"));
  if (node.children.length > 0) {
    const group = el("ul");
    group.setAttribute("role", "group");
    group.append(...node.children.map(fileNode));
    li.append(group);
  }
  return li;
}

function inputs(data: Record<string, unknown> | null): HTMLElement {
  if (!data || Object.keys(data).length === 0) return el("p", "muted", "No cache key: this step is not cached on its own.");
  const dl = el("dl", "cache-inputs");
  for (const [k, v] of Object.entries(data)) {
    const dd = el("dd");
    dd.append(el("pre", "", typeof v === "string" ? v : JSON.stringify(v, null, 2)));
    dl.append(el("dt", "", k.replace(/_/g, " ")), dd);
  }
  return dl;
}
