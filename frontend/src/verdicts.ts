// The verdicts a build's steps end with, and the counts every page shows, from the events alone.
// The same function as builds/engine/verdicts.py; both are tested against the same recorded
// events (frontend/src/fixtures/builds/*.jsonl), so the summary, the bands, the history, the
// comparison and the class grid say the same numbers.
//
//   built      missed the cache and ran, making its layer
//   cached     its layer came from the cache
//   metadata   changes only the image's configuration: no layer, and, as in BuildKit, no step
//   skipped    did not run (its stage is not needed, or the build stopped before it)
//   cancelled  was running when the build was cancelled
//   failed     ran and failed
// A stage's FROM is its base, not a step with a verdict: it is left out of the counts.

import type { StepFinished } from "./events.gen";

/** A step.finished `status`, as the engine's schema declares them (events.gen.ts). */
export type Verdict = StepFinished["status"];
export const VERDICTS = ["built", "cached", "metadata", "skipped", "cancelled", "failed"] as const satisfies readonly Verdict[];
// The list above names every verdict the schema has: a new one fails the type check here.
const EVERY_VERDICT: [Exclude<Verdict, (typeof VERDICTS)[number]>] extends [never] ? true : never = true;
void EVERY_VERDICT;
export type Counts = Record<Verdict, number>;

/** How each verdict is said, on a band and in a count. */
export const VERDICT_WORDS: Record<Verdict, string> = {
  built: "built",
  cached: "cached",
  metadata: "metadata only",
  skipped: "skipped",
  cancelled: "cancelled",
  failed: "failed",
};

/** A step as a page shows it: its verdict, or, before it has one, still to come (`pending`),
 * `running`, or `not_run` (its build ended without reaching it). */
export type StepState = Verdict | "pending" | "running" | "not_run";

/** How every page (the bands, the comparison, the class grid) says a step's state. */
export const STATUS_TEXT: Record<StepState, string> = {
  ...VERDICT_WORDS,
  pending: "waiting",
  running: "running",
  not_run: "not run",
};

interface StepLike {
  type?: string;
  step?: number;
  keyword?: string;
  status?: string;
  metadata?: boolean;
}

export function isVerdict(value: unknown): value is Verdict {
  return typeof value === "string" && (VERDICTS as readonly string[]).includes(value);
}

/** A step.finished event's verdict; null for a FROM (a base) or an unknown status. */
export function verdictOf(step: StepLike): Verdict | null {
  if (step.keyword === "FROM") return null;
  // Events recorded before metadata steps had a status of their own said "cached".
  if (step.status === "cached" && step.metadata === true) return "metadata";
  return isVerdict(step.status) ? step.status : null;
}

export function emptyCounts(): Counts {
  return { built: 0, cached: 0, metadata: 0, skipped: 0, cancelled: 0, failed: 0 };
}

/** How many steps ended with each verdict: step.finished events count, a step reported twice
 * once, as it was last reported. */
export function tally(events: Iterable<StepLike>): Counts {
  const last = new Map<number, Verdict | null>();
  for (const e of events) {
    if ((e.type ?? "step.finished") === "step.finished" && typeof e.step === "number") last.set(e.step, verdictOf(e));
  }
  const counts = emptyCounts();
  for (const v of last.values()) if (v !== null) counts[v] += 1;
  return counts;
}

/** "4 built, 1 cached, 2 metadata only", in one order everywhere. */
export function countsText(counts: Partial<Counts>): string {
  const said = VERDICTS.filter((v) => (counts[v] ?? 0) > 0).map((v) => `${counts[v]} ${VERDICT_WORDS[v]}`);
  return said.length > 0 ? said.join(", ") : "no steps";
}

/** The share of the steps that could come from the cache which did: cached / (cached + built). */
export function cacheShare(counts: Partial<Counts>): { hits: number; total: number; ratio: number | null } {
  const hits = counts.cached ?? 0;
  const total = hits + (counts.built ?? 0);
  return { hits, total, ratio: total > 0 ? hits / total : null };
}

/** Counts as the API sends them; null when absent or malformed. */
export function parseCounts(value: unknown): Counts | null {
  if (typeof value !== "object" || value === null) return null;
  const o = value as Record<string, unknown>;
  const counts = emptyCounts();
  for (const v of VERDICTS) {
    const n = o[v];
    if (n === undefined) continue;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) return null;
    counts[v] = n;
  }
  return counts;
}
