import { describe, expect, it } from "vitest";
import { hitRatio, type BuildSummary } from "./history";

const build = (hits: number, misses: number, extra: Partial<BuildSummary> = {}): BuildSummary => ({
  id: 1, number: 1, status: "succeeded", queued_at: "", duration_ms: 10, cache: { hits, misses }, image: null, ...extra,
});

describe("hitRatio", () => {
  it("is the cached share of the steps that could be cached, from the build's counts", () => {
    const counts = { built: 1, cached: 3, metadata: 2, skipped: 0, cancelled: 0, failed: 0 };
    expect(hitRatio(build(3, 1, { counts }))).toBe(0.75);
    // Metadata-only steps are no steps the cache could serve: they change nothing in the ratio.
    expect(hitRatio(build(3, 1, { counts: { ...counts, metadata: 0 } }))).toBe(0.75);
  });

  it("falls back to the hits and misses of a build finished before counts were kept", () => {
    expect(hitRatio(build(3, 1))).toBe(0.75);
    expect(hitRatio(build(0, 0))).toBeNull();
  });
});
