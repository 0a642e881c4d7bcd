import { describe, expect, it } from "vitest";
import { linesOfRow, rowOfLine } from "./links";
import { summaryCards } from "./text";
import { ComparisonError, parseComparison } from "./types";
import { sharedLayerOf, sharesBase, withStageHeadings } from "./view";
import type { Comparison, DiffLine, Row, SideStep } from "./types";

function step(n: number, line: number, end = line, instruction = `RUN step ${n}`): SideStep {
  return {
    step: n, stage: "0", instruction, line, end_line: end, keyword: "RUN", status: "built", cached: false,
    cache_key: `k${n}`, reason: null, layer: null, duration_ms: 10, size: 0,
  };
}

function row(index: number, a: SideStep | null, b: SideStep | null, kind: Row["kind"] = "same"): Row {
  return {
    index, kind, a, b, same_key: null, parted: false, first_divergence: false,
    duration_delta_ms: null, size_delta: null,
  };
}

// A: 1 FROM, 2-3 RUN (continued), 4 CMD.  B: 1 FROM, 2-3 RUN, 4 COPY (new), 5 CMD.
const rows = [
  row(0, step(1, 1), step(1, 1)),
  row(1, step(2, 2, 3), step(2, 2, 3)),
  row(2, null, step(3, 4), "added"),
  row(3, step(3, 4), step(4, 5)),
];
const lines: DiffLine[] = [
  { op: "equal", a: 1, b: 1, text: "FROM x" },
  { op: "equal", a: 2, b: 2, text: "RUN a \\" },
  { op: "equal", a: 3, b: 3, text: "    b" },
  { op: "insert", a: null, b: 4, text: "COPY . ." },
  { op: "equal", a: 4, b: 5, text: "CMD c" },
];

describe("rows and Dockerfile lines", () => {
  it("lights every line of an instruction continued over several", () => {
    expect(linesOfRow(rows[1]!, lines)).toEqual([1, 2]);
  });

  it("lights a step's line on both sides even when the numbers differ", () => {
    expect(linesOfRow(rows[3]!, lines)).toEqual([4]);
    expect(linesOfRow(rows[2]!, lines)).toEqual([3]);
  });

  it("finds the row of a line, an inserted one too", () => {
    expect(rowOfLine(lines[2]!, rows)?.index).toBe(1);
    expect(rowOfLine(lines[3]!, rows)?.index).toBe(2);
    expect(rowOfLine(lines[4]!, rows)?.index).toBe(3);
  });
});

describe("the summary", () => {
  const base: Comparison = {
    a: { id: 1, number: 1, project: 1, project_name: "p", owner: "o", dockerfile_path: "Dockerfile", status: "succeeded",
      duration_ms: 2000, cache: { hits: 0, misses: 5 }, image: { digest: "sha256:a", size: 3000, layers: 6 } },
    b: { id: 2, number: 2, project: 1, project_name: "p", owner: "o", dockerfile_path: "Dockerfile", status: "succeeded",
      duration_ms: 500, cache: { hits: 4, misses: 1 }, image: { digest: "sha256:b", size: 3000, layers: 6 } },
    rows,
    dockerfiles: { a: "", b: "", diff: { lines, truncated: false } },
    summary: { first_divergence: 2, parting: null, duration_delta_ms: -1500, image_size_delta: 0,
      shared_layers: { count: 4, bytes: 2048, a_layers: 6, b_layers: 6 } },
  };

  it("says how B differs from A in words", () => {
    const notes = summaryCards(base).map((card) => `${card.label}: ${card.a} / ${card.b} (${card.note})`);
    expect(notes).toEqual([
      "Total time: 2.0 s / 500 ms (B: 1.5 s faster)",
      "Cache hits: 0 of 5 steps / 4 of 5 steps (B: 4 hits more)",
      "Image size: 2.9 KB / 2.9 KB (the same)",
      "Shared layers: 4 of 6 / 4 of 6 (2.0 KB stored once, not twice)",
    ]);
  });

  it("marks a row whose two steps made the one layer both images share", () => {
    const layer = (digest: string) => ({ digest, size: 700, files: { added: 1, modified: 0, deleted: 0 } });
    const same = row(0, { ...step(2, 2), layer: layer("sha256:aa") }, { ...step(2, 2), layer: layer("sha256:aa") });
    const differ = row(1, { ...step(3, 3), layer: layer("sha256:aa") }, { ...step(3, 3), layer: layer("sha256:bb") });
    const withLayers: Comparison = { ...base, summary: { ...base.summary,
      shared_layers: { count: 1, bytes: 700, a_layers: 2, b_layers: 2, layers: [{ digest: "sha256:aa", size: 700 }] } } };
    expect(sharedLayerOf(same, withLayers)).toEqual({ digest: "sha256:aa", size: 700 });
    expect(sharedLayerOf(differ, withLayers)).toBeNull();
    expect(sharedLayerOf(row(2, step(1, 1), step(1, 1)), withLayers)).toBeNull();
    const from = (n: number): SideStep => step(n, 1, 1, "FROM busybox");
    expect(sharesBase({ ...row(3, from(1), from(1)), same_key: true }, withLayers)).toBe(true);
    expect(sharesBase({ ...row(4, from(1), from(1)), same_key: false }, withLayers)).toBe(false);
  });

  it("refuses a comparison missing what it draws, naming it", () => {
    expect(parseComparison(base)).toBe(base);
    expect(() => parseComparison({ ...base, rows: "x" })).toThrow(ComparisonError);
    expect(() => parseComparison({ ...base, rows: [row(0, null, null)] })).toThrow(/neither side/);
  });
});

describe("stage headings", () => {
  const at = (stage: string, n: number): SideStep => ({ ...step(n, n), stage });

  it("heads each pair of stages once, a renamed one with both names, and keeps a gap under its stage", () => {
    const headed = withStageHeadings([
      row(0, at("builder", 1), at("build", 1)),
      row(1, null, at("build", 2), "added"),
      row(2, at("builder", 2), at("build", 3)),
      row(3, at("1", 3), at("1", 4)),
      row(4, null, at("tests", 5), "added"),
    ]);
    expect(headed.map(([heading]) => heading)).toEqual([
      "Stage builder → build", "", "", "Stage 1", "Stage tests (only in B)",
    ]);
  });
});
