// The project's builds, newest first: status, how long, how much came from the cache, how big the
// image is. Open one to see its stack as it was; tick two to compare them.
import { Api, type Answer } from "./api";
import { keepOpen, socketUrl, type Connection, type PageLocation } from "./socket";
import { el, formatBytes, formatDuration } from "./format";
import { cacheShare, countsText, type Counts } from "./verdicts";
import type { CacheScope } from "./compare/types";

/** Told on `window` after the project's socket said one of its builds changed, or its checks ran. */
export const PROJECT_CHANGED = "studio:project-changed";
/** The detail of a PROJECT_CHANGED told when a class's checks of one of its builds begin. */
export interface ProjectChange {
  checking?: boolean;
}

function isChecking(data: unknown): boolean {
  if (typeof data !== "string") return false;
  try {
    return (JSON.parse(data) as { type?: unknown }).type === "project.checking";
  } catch {
    return false;
  }
}

/** Told on `window` with the planner's steps for the editor's text (project.ts). */
export const PLANNED = "studio:planned";

export interface BuildSummary {
  id: number;
  number: number;
  status: string;
  queued_at: string;
  duration_ms: number | null;
  cache: { hits: number; misses: number };
  counts?: Counts;
  cache_scope?: CacheScope;
  image: { size: number } | null;
  hit_ratio?: number | null;
  no_cache?: boolean;
  target?: string | null;
}

/** A build's counts (from its events), or from its cache hits and misses for an older one. */
export function countsOf(build: BuildSummary): Partial<Counts> {
  return build.counts ?? { cached: build.cache.hits, built: build.cache.misses };
}

/** The share of steps that could come from the cache which did: cached / (cached + built). */
export function hitRatio(build: BuildSummary): number | null {
  return cacheShare(countsOf(build)).ratio;
}

export class HistoryView {
  private builds: BuildSummary[] = [];
  private readonly ticked = new Set<number>();
  private readonly table: HTMLTableElement;
  private readonly compare: HTMLElement;
  current: number | null = null;

  constructor(
    root: HTMLElement,
    private readonly api: Api,
    private readonly projectId: string,
    private readonly onOpen: (buildId: number) => void,
  ) {
    this.table = el("table", "history-table");
    this.compare = el("p", "history-compare");
    this.compare.setAttribute("aria-live", "polite");
    root.replaceChildren(el("h2", "panel-title", "History"), this.compare, this.table);
  }

  async refresh(): Promise<void> {
    const data = await this.api.call<Answer<"build_list">>("GET", `/api/projects/${this.projectId}/builds/?limit=50`);
    this.builds = data.builds;
    this.render();
  }

  /** Keeps the list current while the page is open: the project's socket says whenever any of
   * its builds is queued or changes status, from this page or another. */
  follow(location: PageLocation, token: string): Connection {
    const share = token ? `?token=${encodeURIComponent(token)}` : "";
    let pending: ReturnType<typeof setTimeout> | null = null;
    return keepOpen({
      url: () => socketUrl(location, `/ws/projects/${encodeURIComponent(this.projectId)}/${share}`),
      onMessage: (data) => {
        if (isChecking(data)) {
          // At once, not with the burst: the checks may be done before the burst's refresh.
          window.dispatchEvent(new CustomEvent(PROJECT_CHANGED, { detail: { checking: true } }));
          return;
        }
        // A build's changes come in bursts (queued, running, finished): one refresh for each burst.
        if (pending !== null) clearTimeout(pending);
        pending = setTimeout(() => {
          pending = null;
          void this.refresh().catch(() => undefined);
          // The lesson panel of a student's copy reads its checks again (lessonpanel.ts).
          window.dispatchEvent(new CustomEvent(PROJECT_CHANGED));
        }, 250);
      },
    });
  }

  /** The newest build (the list is newest first), or null before the first. */
  latest(): BuildSummary | null {
    return this.builds[0] ?? null;
  }

  /** The build's number within the project (#1, #2…), once the list has it. */
  numberOf(id: number): number | null {
    return this.builds.find((b) => b.id === id)?.number ?? null;
  }

  /** " · cache shared by the class …" for a build a class's shared cache served, else "". */
  sharedCacheNote(id: number): string {
    const scope = this.builds.find((b) => b.id === id)?.cache_scope;
    return scope?.kind === "class" ? ` · ${scope.label}` : "";
  }

  setCurrent(id: number | null): void {
    this.current = id;
    this.render();
  }

  private render(): void {
    const head = el("tr");
    for (const title of ["Compare", "Build", "Status", "Duration", "From cache", "Image"]) head.append(el("th", "", title));
    const rows = this.builds.map((b) => {
      const row = el("tr");
      row.dataset["build"] = String(b.id);
      if (b.id === this.current) row.classList.add("current");
      const tick = el("input");
      tick.type = "checkbox";
      tick.checked = this.ticked.has(b.id);
      tick.setAttribute("aria-label", `Compare build #${b.number}`);
      tick.addEventListener("change", () => {
        if (tick.checked) this.ticked.add(b.id);
        else this.ticked.delete(b.id);
        this.renderCompare();
      });
      const open = el("button", "link-button", `#${b.number}`);
      open.type = "button";
      open.setAttribute("aria-label", `Open build #${b.number}`);
      open.addEventListener("click", () => this.onOpen(b.id));
      const ratio = hitRatio(b);
      const cells: (string | HTMLElement)[] = [
        tick,
        open,
        statusBadge(b.status),
        b.duration_ms === null ? "–" : formatDuration(b.duration_ms),
        ratio === null ? "–" : hitText(b, ratio),
        b.image ? formatBytes(b.image.size) : "–",
      ];
      for (const cell of cells) {
        const td = el("td");
        td.append(cell);
        row.append(td);
      }
      return row;
    });
    this.table.replaceChildren(head, ...rows);
    if (this.builds.length === 0) this.table.append(el("caption", "", "No builds yet: press Build."));
    this.renderCompare();
  }

  private renderCompare(): void {
    const picked = this.builds.filter((b) => this.ticked.has(b.id)).sort((a, b) => a.id - b.id);
    if (picked.length === 2) {
      const [a, b] = picked as [BuildSummary, BuildSummary];
      const link = el("a", "button", `Compare #${a.number} with #${b.number}`);
      link.href = `/compare/${a.id}/${b.id}/`;
      this.compare.replaceChildren(link);
    } else {
      this.compare.textContent = picked.length > 2 ? "Tick just two builds to compare them." : "Tick two builds to compare them.";
    }
  }
}

function statusBadge(status: string): HTMLElement {
  return el("span", `badge badge-${status}`, status);
}

/** "60% (3/5)", every verdict's count and whose cache it was a hover away. */
function hitText(b: BuildSummary, ratio: number): HTMLElement {
  const share = cacheShare(countsOf(b));
  const span = el("span", b.cache_scope?.kind === "class" ? "hits shared-cache" : "hits", `${Math.round(ratio * 100)}% (${share.hits}/${share.total})`);
  span.title = `${countsText(countsOf(b))}${b.cache_scope ? ` · ${b.cache_scope.label}` : ""}`;
  return span;
}
