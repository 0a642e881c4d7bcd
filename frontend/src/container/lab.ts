// The container lab on the studio page: a Run button for a person's own finished build, the
// container's output as it comes, and its writable layer drawn as a band on top of the image's
// stack (in place of the dotted placeholder the layer stack draws), listing what it added,
// changed and deleted, with Remove and "Commit as image". A commit draws one more, solid, band:
// a layer is just a saved diff. A commit is made by the worker whose store holds the layer: the
// band says "committing…" until the socket (or, should that worker die, a read of the container
// now and then) brings its end. Everything a container printed or named is shown as text, never
// as markup, and file names with control characters are escaped.
import "./container.css";
import { Api, ApiError, type Answer, type RequestBody, type Schemas } from "../api";
import { el, formatBytes, visibleName } from "../format";
import { keepOpen, socketUrl, type Connection } from "../socket";

export type ContainerState = Schemas["ContainerOut"];
type Change = Schemas["DiffChange"];

const OUTPUT_KEEP_CHARS = 64 * 1024;
const COMMIT_POLL_MS = 3000; // a commit whose worker died is only found out by reading the container
const CHANGE_WORDS: Record<Change["change"], string> = { added: "added", modified: "changed", deleted: "deleted" };

/** What a container's socket sends (builds/containers/consumers.py). */
export type ContainerMessage =
  | { type: "container.state"; container: ContainerState }
  | { type: "container.log"; stream: string; text: string; offset: number }
  | { type: "container.layer"; container: ContainerState };

/** Output as the page keeps it: the snapshot's, then each live piece once (by its offset), the
 * latest OUTPUT_KEEP_CHARS of it. `end` is how many characters of all the container printed it
 * has seen. */
export class OutputBuffer {
  text = "";
  end = 0;

  reset(text: string, end: number): void {
    this.text = text.slice(-OUTPUT_KEEP_CHARS);
    this.end = end;
  }

  add(offset: number, piece: string): boolean {
    if (offset + piece.length <= this.end) return false; // the snapshot had it already
    const fresh = offset >= this.end ? piece : piece.slice(this.end - offset);
    this.text = (this.text + fresh).slice(-OUTPUT_KEEP_CHARS);
    this.end = Math.max(this.end, offset) + fresh.length;
    return true;
  }
}

export function statusText(c: ContainerState): string {
  switch (c.status) {
    case "queued": return "waiting for a worker";
    case "running": return "running";
    case "exited": return c.exit_code === 0 ? "exited 0" : `exited ${c.exit_code ?? "?"}`;
    case "failed": return "did not run";
    case "committing": return "committing…";
    case "committed": return "committed";
    case "removed": return "removed";
  }
}

export function diffText(diff: NonNullable<ContainerState["diff"]>): string {
  return `${diff.added} added · ${diff.modified} changed · ${diff.deleted} deleted · ${formatBytes(diff.size)}`;
}

export class ContainerLab {
  private buildId: number | null = null;
  private state: ContainerState | null = null;
  private socket: Connection | null = null;
  private readonly output = new OutputBuffer();
  private readonly runButton: HTMLButtonElement;
  private readonly command: HTMLInputElement;
  private readonly message: HTMLElement;
  private readonly outputBox: HTMLDetailsElement;
  private readonly outputText: HTMLElement;
  private readonly band: HTMLLIElement;
  private readonly committed: HTMLLIElement;
  private readonly observer: MutationObserver;
  private poll: number | undefined;

  constructor(
    private readonly root: HTMLElement,
    private readonly api: Api,
    private readonly stackRoot: HTMLElement,
    canEdit: boolean,
  ) {
    const form = el("form", "container-run");
    const label = el("label", "", "Command ");
    this.command = el("input");
    this.command.type = "text";
    this.command.id = "container-command";
    this.command.placeholder = "the image's CMD";
    this.command.autocomplete = "off";
    this.command.spellcheck = false;
    this.command.maxLength = 4000;
    label.htmlFor = this.command.id;
    label.append(el("small", "", "(run by /bin/sh -c)"));
    this.runButton = el("button", "", "Run");
    this.runButton.type = "submit";
    this.runButton.id = "run-button";
    form.append(label, this.command, this.runButton);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.run();
    });
    this.message = el("p", "container-message");
    this.message.setAttribute("role", "status");
    this.outputBox = el("details", "container-output");
    this.outputBox.open = true;
    this.outputText = el("pre");
    this.outputBox.append(el("summary", "", "Container output"), this.outputText);
    this.outputBox.hidden = true;
    root.replaceChildren(form, this.message, this.outputBox);
    // Shown from the start to the owner, disabled until a build succeeds: a build that ends
    // must not move the stack under the person watching it.
    root.hidden = !canEdit;
    this.runButton.disabled = true;
    this.band = el("li", "band band-writable");
    this.band.setAttribute("aria-label", "Container layer (writable)");
    this.committed = el("li", "band band-committed");
    this.committed.setAttribute("aria-label", "Committed layer");
    this.band.hidden = this.committed.hidden = true;  // until there is a container to show
    // The stack draws its bands anew when a build's plan arrives: the lab's go back on top.
    this.observer = new MutationObserver(() => this.place());
    this.observer.observe(stackRoot, { childList: true, subtree: true });
  }

  /** Points the lab at a build: runnable when it is the person's own and succeeded. */
  setBuild(buildId: number | null, runnable: boolean): void {
    const wanted = runnable ? buildId : null;
    if (wanted === this.buildId) return;
    window.clearTimeout(this.poll);
    this.socket?.stop();
    this.socket = null;
    this.buildId = wanted;
    this.state = null;
    this.output.reset("", 0);
    this.message.textContent = "";
    this.message.classList.remove("error");
    this.render();
    if (wanted !== null) void this.load(wanted);
  }

  private async load(buildId: number): Promise<void> {
    try {
      const found = await this.api.call<Answer<"container_latest">>("GET", `/api/builds/${buildId}/container/`);
      if (buildId !== this.buildId || !found.container) return;
      this.show(found.container);
      if (isBusy(found.container)) this.follow(found.container.id);
    } catch (error) {
      this.say(error);
    }
  }

  private async run(): Promise<void> {
    if (this.buildId === null || this.runButton.getAttribute("aria-busy") === "true") return;
    const text = this.command.value.trim();
    const body = { cmd: text ? ["/bin/sh", "-c", text] : null } satisfies RequestBody<"container_create">;
    this.runButton.setAttribute("aria-busy", "true");
    this.message.textContent = "";
    try {
      const started = await this.api.call<Answer<"container_create">>("POST", `/api/builds/${this.buildId}/containers/`, body);
      this.output.reset("", 0);
      this.show(started);
      this.follow(started.id);
    } catch (error) {
      this.say(error);
    } finally {
      this.runButton.removeAttribute("aria-busy");
    }
  }

  private follow(containerId: number): void {
    this.socket?.stop();
    const socket = keepOpen({
      url: () => socketUrl(window.location, `/ws/containers/${containerId}/`),
      onMessage: (data) => {
        if (typeof data === "string") this.receive(containerId, JSON.parse(data) as ContainerMessage);
      },
      // Ended: nothing more will come. Otherwise reconnect; the snapshot catches the page up.
      onClose: () => this.state?.id === containerId && isBusy(this.state),
    });
    this.socket = socket;
  }

  receive(containerId: number, message: ContainerMessage): void {
    if (this.state?.id !== containerId) return;
    if (message.type === "container.log") {
      if (this.output.add(message.offset, message.text)) this.renderOutput();
      return;
    }
    // A snapshot (on every connect) and the end both carry the output the database kept.
    this.output.reset(message.container.output, message.container.output_chars);
    this.show(message.container);
    if (!isBusy(message.container)) {
      this.socket?.stop();
      this.socket = null;
    }
  }

  private show(container: ContainerState): void {
    if (this.state?.id !== container.id) this.output.reset(container.output, container.output_chars);
    this.state = container;
    this.render();
    this.pollWhileCommitting();
  }

  /** Reads the container now and then while it is committing: the socket brings the commit's
   * end, but a worker that died under it tells nobody, and a read is what fails it. */
  private pollWhileCommitting(): void {
    window.clearTimeout(this.poll);
    const c = this.state;
    if (c?.status !== "committing") return;
    this.poll = window.setTimeout(() => {
      void this.api.call<Answer<"container_get">>("GET", `/api/containers/${c.id}/`).then((found) => {
        if (this.state?.id === found.id && this.state.status === "committing") this.show(found);
      }, () => this.pollWhileCommitting());
    }, COMMIT_POLL_MS);
  }

  private async act(method: "POST" | "DELETE", path: string, doing: string): Promise<void> {
    if (!this.state) return;
    this.message.textContent = doing;
    try {
      const after = await this.api.call<ContainerState>(method, path);
      this.message.textContent = "";
      this.show(after);
      if (isBusy(after)) this.follow(after.id);
    } catch (error) {
      this.say(error);
    }
  }

  private say(error: unknown): void {
    this.message.textContent = error instanceof ApiError || error instanceof Error ? error.message : String(error);
    this.message.classList.add("error");
  }

  private render(): void {
    const c = this.state;
    this.runButton.disabled = this.buildId === null || (c !== null && isBusy(c));
    this.runButton.title = this.buildId === null ? "A build that succeeded has an image to run" : "";
    this.renderOutput();
    this.fillBand(c);
    this.fillCommitted(c);
    this.place();
  }

  private renderOutput(): void {
    const c = this.state;
    this.outputBox.hidden = c === null;
    const cut = c !== null && this.output.end > this.output.text.length ? "… (earlier output not kept)\n" : "";
    this.outputText.textContent = cut + this.output.text;
    this.outputText.scrollTop = this.outputText.scrollHeight;
  }

  private fillBand(c: ContainerState | null): void {
    const shown = c !== null && (isBusy(c) || c.status === "exited" || c.status === "failed");
    this.band.hidden = !shown;
    if (!c || !shown) return;
    this.band.className = `band band-writable writable-${c.status}`;
    const head = el("div", "band-head");
    head.append(el("span", "band-step", "RW"), el("code", "band-instruction", "container layer (writable)"), el("span", "band-status", statusText(c)));
    const parts: HTMLElement[] = [head];
    if (c.diff) {
      const meta = el("div", "band-meta");
      meta.append(el("span", "band-files", diffText(c.diff)));
      parts.push(meta, el("p", "writable-note", "These files live only in this container: they vanish when it is removed. Commit it to keep them as a layer."), this.fileList(c.diff));
    } else if (isActive(c)) {
      parts.push(el("p", "writable-note", "The container writes here, on top of the read-only image; the image itself never changes."));
    }
    if (c.message) parts.push(el("p", "writable-message", c.message));
    if (!isBusy(c)) parts.push(this.actions(c));
    this.band.replaceChildren(...parts);
  }

  private fileList(diff: NonNullable<ContainerState["diff"]>): HTMLElement {
    const box = el("div", "writable-files");
    const list = el("ul");
    for (const change of diff.changes) {
      const row = el("li", `file-${change.change === "deleted" ? "removed" : change.change}`);
      const name = el("code", "", `/${visibleName(change.path)}`);
      name.title = `${CHANGE_WORDS[change.change]}: /${visibleName(change.path)}`;
      row.append(el("span", "change-word", CHANGE_WORDS[change.change]), name);
      if (change.kind === "file" && change.change !== "deleted") row.append(el("span", "change-size", formatBytes(change.size)));
      list.append(row);
    }
    if (diff.total === 0) list.append(el("li", "muted", "nothing: the container changed no file"));
    box.append(list);
    if (diff.truncated) box.append(el("p", "muted", `… and ${diff.total - diff.changes.length} more (the first ${diff.changes.length} are listed)`));
    return box;
  }

  private actions(c: ContainerState): HTMLElement {
    const bar = el("div", "writable-actions");
    const remove = el("button", "", "Remove");
    remove.type = "button";
    remove.addEventListener("click", () => void this.act("DELETE", `/api/containers/${c.id}/`, "Removing…"));
    bar.append(remove);
    if (c.status === "exited") {
      const commit = el("button", "primary", "Commit as image");
      commit.type = "button";
      commit.addEventListener("click", () => void this.act("POST", `/api/containers/${c.id}/commit/`, "Committing…"));
      bar.append(commit);
    }
    return bar;
  }

  private fillCommitted(c: ContainerState | null): void {
    const image = c?.status === "committed" ? c.committed_image : null;
    this.committed.hidden = !image;
    if (!c || !image) return;
    const head = el("div", "band-head");
    head.append(el("span", "band-step", "+1"), el("code", "band-instruction", "committed container layer"), el("span", "band-status", "new image"));
    const meta = el("div", "band-meta");
    const layer = image.layer;
    meta.append(el("span", "band-files", c.diff ? diffText(c.diff) : ""), el("span", "band-size", layer ? `layer ${String(layer["id"] ?? "")}` : "no new layer"));
    const note = el("p", "writable-note", `A layer is just a saved diff: image ${image.digest.slice(0, 19)}… has ${image.layers} layers, the container's changes on top.`);
    note.title = image.digest;
    this.committed.replaceChildren(head, meta, note);
  }

  /** Puts the lab's bands on top of the image's stack: the committed layer right above the
   * image's top, the container's writable layer (or, without one, the dotted placeholder) above
   * that. The list is column-reversed, so "above" is "after". */
  private place(): void {
    const placeholder = [...this.stackRoot.querySelectorAll<HTMLElement>(".band-container")].at(-1) ?? null;
    if (!placeholder) return;
    if (placeholder.hidden !== !this.band.hidden) placeholder.hidden = !this.band.hidden;
    if (this.committed.nextElementSibling !== placeholder) placeholder.before(this.committed);
    if (placeholder.nextElementSibling !== this.band) placeholder.after(this.band);
  }
}

function isActive(c: ContainerState): boolean {
  return c.status === "queued" || c.status === "running";
}

/** Its layer is in use (it runs, or its worker is committing it): nothing to do but wait. */
export function isBusy(c: ContainerState): boolean {
  return isActive(c) || c.status === "committing";
}
