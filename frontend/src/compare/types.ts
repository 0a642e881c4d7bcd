// The comparison as GET /api/compare/<a>/<b>/ returns it (see /api/schema/, "Comparison"), and
// one row's details (GET …/row/?a=&b=). parseComparison checks the shape once at the boundary;
// the views trust these types after that.
import type { StepFinished, HitsAndMisses } from "../events.gen";
import type { Counts, StepState } from "../verdicts";

export type RowKind = "same" | "changed" | "moved" | "removed" | "added";
// A side's step has a verdict, or is still to come, or its build ended without reaching it.
export type SideStatus = Exclude<StepState, "running">;

/** A build's step as its step.finished event told it, with where it ends and its layer's size. */
export type SideStep = Pick<
  StepFinished,
  "step" | "stage" | "instruction" | "line" | "cached" | "cache_key" | "reason" | "layer" | "duration_ms"
> & {
  end_line: number;
  keyword: string;
  status: SideStatus;
  size: number;
};

export interface Row {
  index: number;
  kind: RowKind;
  a: SideStep | null;
  b: SideStep | null;
  same_key: boolean | null;
  parted: boolean;
  first_divergence: boolean;
  duration_delta_ms: number | null;
  size_delta: number | null;
}

/** Whose cache a build read and filled, as every page shows it. */
export interface CacheScope {
  kind: "user" | "class" | "store";
  name: string;
  label: string;
}

export interface BuildFacts {
  id: number;
  number: number;
  project: number;
  project_name: string;
  owner: string;
  dockerfile_path: string;
  status: string;
  duration_ms: number | null;
  cache: HitsAndMisses;
  counts?: Counts;
  cache_scope?: CacheScope;
  image: { digest: string; size: number | null; layers: number | null } | null;
}

export interface DiffLine {
  op: "equal" | "delete" | "insert";
  a: number | null;
  b: number | null;
  text: string;
}

export interface SharedLayers {
  count: number;
  bytes: number;
  a_layers: number;
  b_layers: number;
  // Each shared layer once, by its diff_id (a step's layer.digest), with its size.
  layers?: { digest: string; size: number }[];
}

export interface Comparison {
  a: BuildFacts;
  b: BuildFacts;
  rows: Row[];
  dockerfiles: { a: string; b: string; diff: { lines: DiffLine[]; truncated: boolean } };
  summary: {
    first_divergence: number | null;
    // Why the builds part there, said between the two builds.
    parting: { row: number; code: string; message: string } | null;
    duration_delta_ms: number | null;
    image_size_delta: number | null;
    shared_layers: SharedLayers | null;
  };
}

export interface FileEntry {
  path: string;
  change: "added" | "removed" | "changed" | "same";
  a_size: number | null;
  b_size: number | null;
  kind?: string;
  a_change?: string | null;
  b_change?: string | null;
  diff?: DiffLine[];
}

export interface RowDetail {
  a: SideStep | null;
  b: SideStep | null;
  instruction: [string, string][];
  context:
    | { reads: false }
    | {
        reads: true;
        a: { sources: string[]; from: string | null; heredoc: boolean } | null;
        b: { sources: string[]; from: string | null; heredoc: boolean } | null;
        files: FileEntry[];
      };
  layer:
    | { layers: false }
    | {
        layers: true;
        error?: string;
        same_layer?: boolean;
        files?: FileEntry[];
        counts?: Record<FileEntry["change"], number>;
        truncated?: boolean;
      };
}

export class ComparisonError extends Error {}

function need(ok: boolean, what: string): void {
  if (!ok) throw new ComparisonError(`the comparison is malformed: ${what}`);
}

/** Checks the parts the page relies on; throws ComparisonError naming the first thing amiss. */
export function parseComparison(raw: unknown): Comparison {
  const o = raw as Partial<Comparison> | null;
  need(typeof o === "object" && o !== null, "not an object");
  const c = o as Comparison;
  need(Array.isArray(c.rows), "rows must be a list");
  need(typeof c.a === "object" && typeof c.b === "object", "a and b must be builds");
  need(typeof c.dockerfiles === "object" && Array.isArray(c.dockerfiles?.diff?.lines), "dockerfiles.diff");
  need(typeof c.summary === "object", "summary");
  for (const row of c.rows) {
    need(typeof row.index === "number" && typeof row.kind === "string", "a row without index or kind");
    need(row.a !== null || row.b !== null, `row ${row.index} has neither side`);
    for (const side of [row.a, row.b]) {
      if (side === null) continue;
      need(typeof side.step === "number" && typeof side.instruction === "string", `row ${row.index}'s step`);
      need(typeof side.line === "number" && typeof side.end_line === "number", `row ${row.index}'s lines`);
    }
  }
  return c;
}
