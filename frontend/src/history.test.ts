import { describe, expect, it } from "vitest";
import { hitRatio, type BuildSummary } from "./history";

const build = (hits: number, misses: number, hit_ratio?: number | null): BuildSummary => ({
  id: 1, number: 1, status: "succeeded", queued_at: "", duration_ms: 10, cache: { hits, misses }, image: null, hit_ratio,
});

describe("hitRatio", () => {
  it("prefers the server's figure and falls back to the counts", () => {
    expect(hitRatio(build(3, 1, 0.5))).toBe(0.5);
    expect(hitRatio(build(3, 1))).toBe(0.75);
    expect(hitRatio(build(0, 0))).toBeNull();
  });
});
