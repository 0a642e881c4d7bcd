// The project's read-only link, for its owner: make it, copy it, end it. Whoever holds the link
// may look at the files, the builds and their stacks, and change nothing.
import { Api, type Answer } from "./api";
import { el } from "./format";

/** The address a share token opens: this project's studio, with the token. */
export function shareUrl(origin: string, projectId: string, token: string): string {
  return `${origin}/studio/${encodeURIComponent(projectId)}/?token=${encodeURIComponent(token)}`;
}

export class ShareControl {
  private readonly status: HTMLElement;
  private readonly link: HTMLInputElement;
  private readonly make: HTMLButtonElement;
  private readonly copy: HTMLButtonElement;
  private readonly revoke: HTMLButtonElement;

  constructor(
    private readonly root: HTMLElement,
    private readonly api: Api,
    private readonly projectId: string,
    private token: string | null,
  ) {
    this.status = el("p", "share-status");
    this.status.setAttribute("role", "status");
    this.status.setAttribute("aria-live", "polite");
    this.link = el("input", "share-link");
    this.link.id = "share-link";
    this.link.readOnly = true;
    this.link.setAttribute("aria-label", "Read-only link");
    this.make = button("Make a read-only link", () => void this.create());
    this.copy = button("Copy the link", () => void this.copyLink());
    this.revoke = button("Revoke the link", () => void this.end());
    const body = el("div", "share-body");
    body.append(this.status, this.link, this.make, this.copy, this.revoke);
    root.querySelector(".share-body")?.remove();
    root.append(body);
    root.hidden = false;
    this.render();
  }

  private render(): void {
    const on = this.token !== null;
    this.link.hidden = !on;
    this.link.value = on ? shareUrl(location.origin, this.projectId, this.token ?? "") : "";
    this.make.hidden = on;
    this.copy.hidden = !on;
    this.revoke.hidden = !on;
    this.root.dataset["shared"] = String(on);
  }

  private say(text: string): void {
    this.status.textContent = text;
  }

  private async create(): Promise<void> {
    try {
      const answer = await this.api.call<Answer<"project_share">>("POST", `/api/projects/${this.projectId}/share/`);
      this.token = answer.share_token ?? null;
      this.render();
      await this.copyLink();
    } catch (error) {
      this.say(`Could not make the link: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async copyLink(): Promise<void> {
    if (this.token === null) return;
    try {
      await navigator.clipboard.writeText(this.link.value);
      this.say("Copied: whoever opens the link may look but not change or build.");
    } catch {
      // No clipboard (an insecure address, or permission refused): the link stays selected to copy by hand.
      this.link.focus();
      this.link.select();
      this.say("Select and copy the link: the browser would not copy it here.");
    }
  }

  private async end(): Promise<void> {
    try {
      await this.api.call<Answer<"project_unshare">>("DELETE", `/api/projects/${this.projectId}/share/`);
      this.token = null;
      this.render();
      this.say("Revoked: the old link no longer opens the project.");
    } catch (error) {
      this.say(`Could not revoke the link: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function button(text: string, onClick: () => void): HTMLButtonElement {
  const b = el("button", "", text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}
