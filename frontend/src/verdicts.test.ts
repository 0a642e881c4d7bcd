import { describe, expect, it } from "vitest";
import { BuildStore } from "./store";
import { bandVerdict, finishedSummary } from "./layerstack";
import { hitRatio } from "./history";
import { STATUS_TEXT as COMPARE_STATUS_TEXT, summaryCards } from "./compare/text";
import type { Comparison } from "./compare/types";
import { cellStatus, hitLabel } from "./classroom/view";
import type { BuildBrief, Cell } from "./classroom/messages";
import { cacheShare, countsText, STATUS_TEXT, tally, VERDICTS, VERDICT_WORDS, type Counts } from "./verdicts";
import expected from "./fixtures/builds/expected.json";
import first from "./fixtures/builds/first.jsonl?raw";
import again from "./fixtures/builds/again.jsonl?raw";
import edited from "./fixtures/builds/edited.jsonl?raw";
import failed from "./fixtures/builds/failed.jsonl?raw";
import cancelled from "./fixtures/builds/cancelled.jsonl?raw";
import skipped from "./fixtures/builds/skipped.jsonl?raw";

// Events of real builds, and how many steps of each ended with each verdict (README.md there).
const RECORDED: Record<string, string> = { first, again, edited, failed, cancelled, skipped };
const EXPECTED = expected as Record<string, Counts>;

function replay(text: string): BuildStore {
  const store = new BuildStore({ schedule: (flush) => flush() });
  for (const line of text.split("\n")) if (line.trim()) store.receive(line);
  return store;
}

describe.each(Object.keys(RECORDED))("the recorded build %s", (name) => {
  const store = replay(RECORDED[name]!);
  const want = EXPECTED[name]!;
  const views = [...store.steps.values()];
  const finished = views.flatMap((v) => (v.finished ? [v.finished] : []));

  it("is counted from its events as the engine counted it", () => {
    expect(tally(finished)).toEqual(want);
    expect(store.finished?.counts).toEqual(want);
    expect(store.finished?.cache).toEqual({ hits: want.cached, misses: want.built });
  });

  it("has as many bands reading each verdict as its summary says", () => {
    const bands: Record<string, number> = {};
    for (const view of views) {
      const said = bandVerdict(view);
      bands[said] = (bands[said] ?? 0) + 1;
    }
    for (const v of VERDICTS) expect(bands[VERDICT_WORDS[v]] ?? 0, v).toBe(want[v]);
    const summary = finishedSummary(store.finished!, views);
    expect(summary).toContain(countsText(want));
    // Every band that is no base is in the summary's counts.
    expect(views.length - (bands["base"] ?? 0)).toBe(VERDICTS.reduce((n, v) => n + want[v], 0));
  });

  it("gives the history, the comparison and the class grid the same numbers", () => {
    const { hits, total, ratio } = cacheShare(want);
    const summary = { id: 1, number: 1, status: store.finished!.status, queued_at: "", duration_ms: 1,
      cache: store.finished!.cache!, counts: store.finished!.counts!, image: null };
    expect(hitRatio(summary)).toBe(ratio);

    const side = { ...summary, project: 1, project_name: "p", owner: "alice", dockerfile_path: "Dockerfile" };
    const comparison = { a: side, b: side, summary: { duration_delta_ms: 0, image_size_delta: null, shared_layers: null } } as unknown as Comparison;
    const card = summaryCards(comparison).find((c) => c.label === "Cache hits")!;
    expect(card.a).toBe(`${hits} of ${total} steps`);

    const cells: Cell[] = finished.map((f) => ({ step: f.step, instruction: f.instruction, line: f.line, status: f.status }));
    const grid: Record<string, number> = {};
    for (const cell of cells) grid[cellStatus(cell)] = (grid[cellStatus(cell)] ?? 0) + 1;
    for (const v of VERDICTS) expect(grid[v] ?? 0, v).toBe(want[v]);
    const brief = { status: store.finished!.status, cache: store.finished!.cache!, counts: want } as unknown as BuildBrief;
    expect(hitLabel(brief)).toBe(ratio === null ? "–" : `${Math.round(ratio * 100)}%`);
  });
});

describe("the words", () => {
  it("say a first build as a person counts its bands, a metadata step never as cached", () => {
    expect(countsText(EXPECTED["first"]!)).toBe("5 built, 2 metadata only");
    expect(countsText(EXPECTED["cancelled"]!)).toBe("1 built, 3 cached, 1 metadata only, 1 skipped, 1 cancelled");
  });
});

describe("STATUS_TEXT", () => {
  it("is the one map the bands and the comparison say a step's state with", () => {
    expect(COMPARE_STATUS_TEXT).toBe(STATUS_TEXT);
    expect(STATUS_TEXT.pending).toBe("waiting");
    expect(STATUS_TEXT.not_run).toBe("not run");
  });
});
