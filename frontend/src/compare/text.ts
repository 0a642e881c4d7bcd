// Words the comparison uses in more than one place: statuses, signed differences, the summary.
import { formatBytes, formatDuration } from "../format";
import type { Comparison } from "./types";
import { cacheShare, type Counts } from "../verdicts";

/** A build's statuses before it has an outcome. */
export const ACTIVE = new Set(["queued", "running"]);

// A step's state is said as on every page (verdicts.ts).
export { STATUS_TEXT } from "../verdicts";

/** "+1.2 s", "−300 ms", "±0" — a difference b minus a, signed so it reads as "b took longer". */
export function signedDuration(ms: number | null): string {
  if (ms === null) return "";
  if (ms === 0) return "±0";
  return `${ms > 0 ? "+" : "−"}${formatDuration(Math.abs(ms))}`;
}

export function signedBytes(n: number | null): string {
  if (n === null) return "";
  if (n === 0) return "±0";
  return `${n > 0 ? "+" : "−"}${formatBytes(Math.abs(n))}`;
}

export interface Card {
  label: string;
  a: string;
  b: string;
  note: string;
}

/** "B: 134 ms faster" — how B differs from A, in words, or "the same". */
function compared(delta: number | null, show: (n: number) => string, more: string, less: string): string {
  if (delta === null) return "";
  if (delta === 0) return "the same";
  return `B: ${show(Math.abs(delta))} ${delta > 0 ? more : less}`;
}

/** A side's counts as the API gave them (from its events), or, for a build finished before
 * counts were kept, from its cache hits and misses. */
export function countsOf(side: Comparison["a"]): Counts {
  return side.counts ?? { built: side.cache.misses, cached: side.cache.hits, metadata: 0, skipped: 0, cancelled: 0, failed: 0 };
}

/** The four numbers people ask first: time, cache hits, image size, what the images share. */
export function summaryCards(c: Comparison): Card[] {
  const time = (ms: number | null): string => (ms === null ? "—" : formatDuration(ms));
  const hits = (side: Comparison["a"]): string => {
    if (ACTIVE.has(side.status)) return side.status;
    const share = cacheShare(countsOf(side));
    return `${share.hits} of ${share.total} steps`;
  };
  const size = (side: Comparison["a"]): string => (side.image?.size != null ? formatBytes(side.image.size) : "no image");
  const shared = c.summary.shared_layers;
  const moreHits = ACTIVE.has(c.a.status) || ACTIVE.has(c.b.status) ? null : countsOf(c.b).cached - countsOf(c.a).cached;
  return [
    {
      label: "Total time",
      a: time(c.a.duration_ms),
      b: time(c.b.duration_ms),
      note: compared(c.summary.duration_delta_ms, formatDuration, "slower", "faster"),
    },
    {
      label: "Cache hits",
      a: hits(c.a),
      b: hits(c.b),
      note: compared(moreHits, (n) => `${n} ${n === 1 ? "hit" : "hits"}`, "more", "fewer"),
    },
    {
      label: "Image size",
      a: size(c.a),
      b: size(c.b),
      note: compared(c.summary.image_size_delta, formatBytes, "larger", "smaller"),
    },
    shared
      ? {
          label: "Shared layers",
          a: `${shared.count} of ${shared.a_layers}`,
          b: `${shared.count} of ${shared.b_layers}`,
          note: `${formatBytes(shared.bytes)} stored once, not twice`,
        }
      : { label: "Shared layers", a: "—", b: "—", note: "both builds need an image" },
  ];
}
