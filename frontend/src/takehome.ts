// "Take the image home", under a succeeded build's stack: download it as an archive `docker load`
// takes, and (for the project's owner, when the studio has a registry) push it there, with each
// layer's fate shown as it happens (pushed, already there, or mounted from another repository)
// and the `docker pull` that fetches it afterwards.
import { Api, ApiError, type Answer, type RequestBody } from "./api";
import { el, formatBytes, plural } from "./format";
import "./takehome.css";

type Home = Answer<"build_take_home">;
type Push = NonNullable<Home["push"]["latest"]>;
type Layer = Push["layers"][number];

const POLL_MS = 400;

/** What a layer's status says to a person. */
export function layerStatusText(layer: Pick<Layer, "status" | "current" | "size" | "source">): string {
  switch (layer.status) {
    case "waiting": return "waiting";
    case "uploading": return `uploading ${formatBytes(layer.current)} of ${formatBytes(layer.size)}`;
    case "pushed": return "pushed";
    case "exists": return "already there";
    // The source is on the same registry: its path says which repository.
    case "mounted": return layer.source ? `mounted from ${layer.source.split("/").slice(1).join("/")}` : "mounted";
  }
}

/** One line summing a push up: "3 layers: 1 pushed (2.0 MB), 2 already there". */
export function pushSummary(push: Pick<Push, "layers" | "uploaded" | "status">): string {
  const count = (status: Layer["status"]) => push.layers.filter((l) => l.status === status).length;
  const parts: string[] = [];
  if (count("pushed")) parts.push(`${count("pushed")} pushed (${formatBytes(push.uploaded)})`);
  if (count("exists")) parts.push(`${count("exists")} already there, not sent`);
  if (count("mounted")) parts.push(`${count("mounted")} mounted from another repository`);
  const left = push.layers.length - count("pushed") - count("exists") - count("mounted");
  if (left && push.status !== "failed") parts.push(`${left} to go`);
  return `${plural(push.layers.length, "layer")}: ${parts.join(", ") || "none placed"}`;
}

function button(text: string, onClick: () => void, className = ""): HTMLButtonElement {
  const made = el("button", className, text);
  made.type = "button";
  made.addEventListener("click", onClick);
  return made;
}

export class TakeHome {
  private buildId: number | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly download: HTMLAnchorElement;
  private readonly loadHint: HTMLElement;
  private readonly pushForm: HTMLFormElement;
  private readonly prefix: HTMLElement;
  private readonly repository: HTMLInputElement;
  private readonly tag: HTMLInputElement;
  private readonly pushButton: HTMLButtonElement;
  private readonly off: HTMLElement;
  private readonly status: HTMLElement;
  private readonly layers: HTMLOListElement;
  private readonly pull: HTMLElement;
  private readonly pullCommand: HTMLElement;
  private readonly copied: HTMLElement;

  constructor(private readonly root: HTMLElement, private readonly api: Api) {
    const title = el("h2", "take-home-title", "Take the image home");
    this.download = el("a", "button take-home-download", "Download for docker load");
    this.download.id = "download-image";
    this.loadHint = el("pre", "take-home-hint");
    this.off = el("p", "push-off");
    this.off.id = "push-off";
    this.pushForm = el("form", "push-form");
    this.pushForm.id = "push-form";
    this.prefix = el("span", "push-prefix");
    this.repository = el("input", "push-repository");
    this.repository.id = "push-repository";
    this.repository.autocomplete = "off";
    this.repository.spellcheck = false;
    this.repository.maxLength = 128;
    this.repository.setAttribute("aria-label", "Repository");
    this.tag = el("input", "push-tag");
    this.tag.id = "push-tag";
    this.tag.value = "latest";
    this.tag.maxLength = 128;
    this.tag.setAttribute("aria-label", "Tag");
    this.pushButton = el("button", "primary", "Push");
    this.pushButton.id = "push-button";
    this.pushButton.type = "submit";
    const where = el("label", "push-where");
    where.append(this.prefix, this.repository, el("span", "push-colon", ":"), this.tag, this.pushButton);
    this.pushForm.append(where);
    this.pushForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.push();
    });
    this.status = el("p", "push-status");
    this.status.id = "push-status";
    this.status.setAttribute("role", "status");
    this.status.setAttribute("aria-live", "polite");
    this.layers = el("ol", "push-layers");
    this.layers.id = "push-layers";
    this.pull = el("div", "push-pull");
    this.pull.id = "push-pull";
    this.pullCommand = el("code", "push-pull-command");
    this.pullCommand.id = "pull-command";
    this.copied = el("span", "push-copied");
    this.copied.setAttribute("role", "status");
    const copyRow = el("div", "push-copy-row");
    copyRow.append(button("Copy", () => void this.copy(), "push-copy"), this.copied);
    this.pull.append(el("span", "push-pull-label", "Pull it anywhere:"), this.pullCommand, copyRow);
    root.replaceChildren(title, this.download, this.loadHint, this.off, this.pushForm, this.status, this.layers, this.pull);
    root.hidden = true;
  }

  /** Shows the section for a build: `status` is its end (null while it runs: hidden). */
  show(buildId: number, status: string | null): void {
    this.stopPolling();
    this.buildId = buildId;
    if (status !== "succeeded") {
      this.root.hidden = true;
      return;
    }
    void this.refresh(true);
  }

  private stopPolling(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async refresh(first = false): Promise<void> {
    const id = this.buildId;
    if (id === null) return;
    let home: Home;
    try {
      home = await this.api.call<Home>("GET", `/api/builds/${id}/home/`);
    } catch {
      if (id === this.buildId && first) this.root.hidden = true;
      return;
    }
    if (id !== this.buildId) return;  // another build was shown meanwhile
    this.render(home, first);
  }

  private render(home: Home, first: boolean): void {
    const archive = home.archive;
    if (!archive) {
      this.root.hidden = true;
      return;
    }
    this.root.hidden = false;
    this.download.href = archive.url;
    this.download.download = archive.file;
    this.download.textContent = `Download for docker load (${formatBytes(archive.size)})`;
    this.loadHint.textContent = `docker load -i ${archive.file}\ndocker run --rm ${archive.loads_as}`;
    const push = home.push;
    this.off.hidden = !push.allowed || push.registry !== null;
    this.off.textContent = push.off_because ?? "";
    this.pushForm.hidden = !push.allowed || push.registry === null;
    this.prefix.textContent = push.registry ? `${push.registry}/` : "";
    if (first && !this.repository.value) this.repository.value = this.suggestedName(archive.loads_as);
    this.renderPush(push.latest);
  }

  /** The repository suggested for a first push: the name the archive loads as, without "studio/". */
  private suggestedName(loadsAs: string): string {
    return loadsAs.replace(/^studio\//, "").replace(/:.*$/, "");
  }

  private renderPush(push: Push | null): void {
    this.stopPolling();
    const going = push !== null && (push.status === "queued" || push.status === "running");
    this.pushButton.disabled = going;
    this.layers.hidden = push === null || push.layers.length === 0;
    this.pull.hidden = push?.pull == null;
    this.root.dataset["push"] = push?.status ?? "none";
    this.root.dataset["pushId"] = push ? String(push.id) : "";
    if (push === null) {
      this.status.textContent = "";
      this.layers.replaceChildren();
      return;
    }
    const head = push.status === "failed" ? `Push to ${push.reference} failed: ${push.error ?? "unknown error"}`
      : push.status === "succeeded" ? `Pushed to ${push.reference}`
      : `Pushing to ${push.reference}…`;
    this.status.textContent = push.layers.length ? `${head}. ${pushSummary(push)}` : head;
    this.status.classList.toggle("error", push.status === "failed");
    this.layers.replaceChildren(...push.layers.map((layer, i) => this.layerRow(layer, i)));
    if (this.pullCommand.textContent !== (push.pull ?? "")) this.copied.textContent = "";
    this.pullCommand.textContent = push.pull ?? "";
    if (going) this.timer = setTimeout(() => void this.refresh(), POLL_MS);
  }

  private layerRow(layer: Layer, index: number): HTMLLIElement {
    const row = el("li", "push-layer");
    row.dataset["status"] = layer.status;
    row.append(
      el("span", "push-layer-index", `${index + 1}`),
      el("code", "push-layer-digest", layer.digest.replace(/^sha256:/, "").slice(0, 12)),
      el("span", "push-layer-size", formatBytes(layer.size)),
      el("span", "push-layer-status", layerStatusText(layer)),
    );
    row.title = layer.digest;
    return row;
  }

  private async push(): Promise<void> {
    if (this.buildId === null) return;
    this.pushButton.disabled = true;
    this.status.classList.remove("error");
    this.status.textContent = "Queuing the push…";
    try {
      const body = { repository: this.repository.value.trim(), tag: this.tag.value.trim() || "latest" } satisfies RequestBody<"build_push">;
      const push = await this.api.call<Push>("POST", `/api/builds/${this.buildId}/push/`, body);
      this.renderPush(push);
    } catch (error) {
      this.pushButton.disabled = false;
      this.status.classList.add("error");
      this.status.textContent = error instanceof ApiError ? error.message : String(error);
      const field = error instanceof ApiError ? error.details["field"] : null;
      if (field === "repository") this.repository.focus();
      if (field === "tag") this.tag.focus();
    }
  }

  private async copy(): Promise<void> {
    const text = this.pullCommand.textContent ?? "";
    try {
      // A browser may leave the promise waiting on a permission nobody is asked for.
      const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer")), 1000));
      await Promise.race([navigator.clipboard.writeText(text), late]);
    } catch {
      // Pages served over plain HTTP have no clipboard API: copy the selected text instead.
      const range = document.createRange();
      range.selectNodeContents(this.pullCommand);
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      document.execCommand("copy");
    }
    this.copied.textContent = "Copied";
  }
}
