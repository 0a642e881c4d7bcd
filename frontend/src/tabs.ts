// The open files as tabs above the editor; the tab list follows the ARIA tabs pattern, so the
// arrow keys move between tabs and each tab can be closed with its own button.
import { el } from "./format";

export class Tabs {
  private open: string[] = [];
  active = "";

  constructor(
    private readonly root: HTMLElement,
    private readonly onSelect: (path: string) => void,
    private readonly onClose: (path: string) => void,
  ) {
    root.setAttribute("role", "tablist");
    root.setAttribute("aria-label", "Open files");
  }

  show(path: string): void {
    if (!this.open.includes(path)) this.open.push(path);
    this.active = path;
    this.render();
  }

  rename(from: string, to: string): void {
    this.open = this.open.map((p) => (p === from ? to : p));
    if (this.active === from) this.active = to;
    this.render();
  }

  /** Closes a tab; returns the tab shown next, if any. */
  close(path: string): string | null {
    const i = this.open.indexOf(path);
    if (i < 0) return null;
    this.open.splice(i, 1);
    if (this.active === path) this.active = this.open[Math.max(0, i - 1)] ?? "";
    this.render();
    return this.active || null;
  }

  has(path: string): boolean {
    return this.open.includes(path);
  }

  private render(): void {
    this.root.replaceChildren(
      ...this.open.map((path) => {
        const tab = el("div", "tab");
        const name = el("button", "tab-name", path.split("/").pop() ?? path);
        name.type = "button";
        name.setAttribute("role", "tab");
        name.setAttribute("aria-selected", String(path === this.active));
        name.tabIndex = path === this.active ? 0 : -1;
        name.title = path;
        name.dataset["path"] = path;
        name.addEventListener("click", () => this.onSelect(path));
        name.addEventListener("keydown", (ev) => {
          const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
          if (step === 0) return;
          const next = this.open[(this.open.indexOf(path) + step + this.open.length) % this.open.length];
          if (next) {
            this.onSelect(next);
            this.root.querySelector<HTMLElement>(`[data-path="${CSS.escape(next)}"]`)?.focus();
          }
        });
        const close = el("button", "tab-close", "×");
        close.type = "button";
        close.setAttribute("aria-label", `Close ${path}`);
        close.addEventListener("click", () => this.onClose(path));
        tab.append(name, close);
        tab.classList.toggle("active", path === this.active);
        return tab;
      }),
    );
  }
}
