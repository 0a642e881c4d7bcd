// Draws the grid: a row per student, a coloured cell per step of their latest build, then the
// build's hit ratio, image size, checks passed and last activity. Two ticked rows make the
// "compare these two" link.
import { el, formatBytes } from "../format";
import { compareUrl, keyword, mistakeGroups, studioUrl, type GridState } from "./grid";
import type { BuildBrief, Cell, StepAccuracy, StudentRow } from "./messages";
import { cacheShare, countsText, VERDICT_WORDS, isVerdict } from "../verdicts";

const BUILD_WORDS: Record<string, string> = {
  queued: "queued",
  running: "building…",
  succeeded: "built",
  failed: "failed",
  cancelled: "cancelled",
};

export function ago(iso: string | null, now: number): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function renderGrid(root: HTMLElement, state: GridState, picked: Set<number>, now = Date.now()): void {
  const rows = state.sorted();
  if (rows.length === 0) {
    root.replaceChildren(el("p", "muted", "Nobody has this exercise yet: students get it when they join."));
    return;
  }
  const columns = state.columns();
  const table = el("table", "grid");
  const head = el("tr");
  head.append(el("th", "pick", ""), el("th", "name", "Student"));
  for (let i = 1; i <= columns; i++) head.append(el("th", "step-head", String(i)));
  head.append(el("th", "", "Build"), el("th", "", "Cache hits"), el("th", "", "Image"), el("th", "", "Checks"), el("th", "", "Last activity"));
  const thead = el("thead");
  const tbody = el("tbody");
  thead.append(head);
  for (const row of rows) tbody.append(renderRow(row, columns, picked, now));
  table.append(thead, tbody);
  root.replaceChildren(table);
}

function renderRow(row: StudentRow, columns: number, picked: Set<number>, now: number): HTMLTableRowElement {
  const tr = el("tr");
  tr.dataset.student = String(row.student);
  tr.dataset.build = row.build ? String(row.build.id) : "";
  tr.dataset.status = row.build?.status ?? "none";
  const pick = el("input");
  pick.type = "checkbox";
  pick.checked = picked.has(row.student);
  pick.disabled = !row.build;
  pick.setAttribute("aria-label", `pick ${row.name} to compare`);
  pick.dataset.student = String(row.student);
  const name = el("a", "student-name", row.name);
  name.href = studioUrl(row);
  name.title = row.build ? `open ${row.name}'s build #${row.build.number}` : `open ${row.name}'s copy`;
  tr.append(cell("pick", pick), cell("name", name));

  const steps = row.build?.steps ?? [];
  for (let i = 0; i < columns; i++) {
    const step = steps[i];
    const status = step === undefined ? "" : cellStatus(step);
    const td = el("td", step ? `cell status-${status}` : "cell empty", step ? keyword(step.instruction) : "");
    if (step) {
      td.dataset.step = String(step.step);
      td.title = `${step.step}. ${step.instruction} — ${isVerdict(status) ? VERDICT_WORDS[status] : status}`;
    }
    tr.append(td);
  }
  const build = row.build;
  tr.append(
    el("td", `build-status build-${build?.status ?? "none"}`, build ? `#${build.number} ${BUILD_WORDS[build.status] ?? build.status}` : "not built"),
    hitCell(row),
    el("td", "image-size", build?.image_size != null ? formatBytes(build.image_size) : "–"),
    checksCell(row),
    el("td", "activity", ago(row.last_activity, now)),
  );
  return tr;
}

/** A grid cell's status: its step's verdict, where the build is at, or "base" for a FROM (a
 * stage's base, not a step the cache served: verdicts.ts). */
export function cellStatus(step: Cell): string {
  const done = step.status !== "running" && step.status !== "pending";
  return done && keyword(step.instruction) === "FROM" ? "base" : step.status;
}

/** "60%": the cached share of the steps that could come from the cache, from the build's counts. */
export function hitLabel(build: BuildBrief): string {
  if (build.status === "queued" || build.status === "running") return "–";
  const share = cacheShare(build.counts ?? { cached: build.cache.hits, built: build.cache.misses });
  return share.ratio === null ? "–" : `${Math.round(share.ratio * 100)}%`;
}

/** The cache hit share, with every verdict's count and whose cache it was a hover away:
 * the counts every page shows, from the build's events. */
function hitCell(row: StudentRow): HTMLTableCellElement {
  const build = row.build;
  const finished = build !== null && build.status !== "queued" && build.status !== "running";
  const counts = build?.counts ?? (build ? { cached: build.cache.hits, built: build.cache.misses } : {});
  const td = el("td", "hit-ratio", build ? hitLabel(build) : "–");
  if (finished && build) {
    const shared = build.cache_scope?.kind === "class" ? ` · ${build.cache_scope.label}` : "";
    td.title = `${countsText(counts)}${shared}`;
    if (build.cache_scope?.kind === "class") td.classList.add("shared-cache");
  }
  return td;
}

function cell(className: string, child: HTMLElement): HTMLTableCellElement {
  const td = el("td", className);
  td.append(child);
  return td;
}

function checksCell(row: StudentRow): HTMLTableCellElement {
  const { passed, total, results, state } = row.checks;
  // Never built or checked is "not yet", not 0 out of N: nothing failed. While the checks' own
  // builds run, the last verdicts would be stale news: "checking…".
  const notYet = total > 0 && state === "not_yet";
  const words = state === "checking" ? "checking…" : notYet ? "not yet" : total ? `${passed}/${total}` : "–";
  const td = el("td", "checks-passed", words);
  if (state) td.classList.add(`state-${state}`);
  if (total && passed === total) td.classList.add("all-passed");
  td.title = results.map((r) => `${r.status === "pass" ? "✓" : r.status === "fail" ? "✗" : "…"} ${r.check}: ${r.message}`).join("\n");
  return td;
}

/** The link to compare the two ticked students' latest builds, or null unless exactly two are. */
export function pickedCompareUrl(state: GridState, picked: Set<number>): string | null {
  const rows = [...picked].map((id) => state.rows.get(id)).filter((r): r is StudentRow => !!r);
  const [a, b] = rows;
  return rows.length === 2 && a && b ? compareUrl(a, b) : null;
}

const SOURCE_WORDS: Record<string, string> = { studio: "cache hint", hadolint: "hadolint", check: "check" };

/** What the class got wrong: a group per mistake, largest first, naming its students, with a
 * link to one anonymised example of it for the projector. */
export function renderMistakes(list: HTMLElement, empty: HTMLElement, state: GridState, exampleUrl: string): void {
  const groups = mistakeGroups(state.sorted());
  empty.hidden = groups.length > 0;
  list.replaceChildren(
    ...groups.map((g) => {
      const li = el("li", "mistake");
      li.dataset.code = g.code;
      li.dataset.count = String(g.students.length);
      const sentence = el("p", "mistake-sentence");
      const [count, ...rest] = g.sentence.split(" ");
      sentence.append(el("span", "count", count ?? ""), ` ${rest.join(" ")} `, el("span", "mistake-source", `(${SOURCE_WORDS[g.source] ?? g.source})`));
      const example = el("a", "mistake-example-link", "open an anonymised example");
      example.href = `${exampleUrl}?code=${encodeURIComponent(g.code)}`;
      li.append(sentence, el("p", "mistake-students", g.students.map((s) => s.name).join(", ")), example);
      return li;
    }),
  );
}

/** The class's prediction accuracy per step, as each graded prediction arrives. */
export function renderAccuracy(table: HTMLTableElement, rows: StepAccuracy[]): void {
  const body = table.tBodies[0] ?? table.createTBody();
  body.replaceChildren(
    ...rows.map((a) => {
      const tr = el("tr");
      const step = el("td");
      const short = a.instruction.length > 60 ? `${a.instruction.slice(0, 59)}…` : a.instruction;
      step.append(`${a.step}. `, el("code", "", short));
      tr.append(step, el("td", "", `${a.right} of ${a.total}`));
      return tr;
    }),
  );
  table.hidden = rows.length === 0;
}
