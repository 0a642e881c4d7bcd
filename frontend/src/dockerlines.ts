// Where each step sits in the Dockerfile's text, so a band can light up its lines, the cursor can
// find its band, and the gutter can mark a prediction on every line of a step.

export type Prediction = "cached" | "built" | "metadata" | "skipped";

export interface PlanStep {
  step: number;
  stage: string;
  instruction: string;
  line: number;
  end_line?: number;
  keyword?: string;
  prediction: Prediction;
  /** False when the planner cannot be sure (a RUN mounting a stage that will be rebuilt). */
  certain?: boolean;
  reason: { code: string; message: string; [detail: string]: unknown } | null;
}

export interface LineMark {
  step: number;
  prediction: Prediction;
  certain: boolean;
  /** What the gutter says on hover: the verdict, and why for a rebuild. */
  title: string;
  first: boolean;
}

/** The last line (1-based) of the instruction starting at `line`: it runs on while a line ends
 * in a backslash, and comment lines inside it do not end it. */
export function stepEndLine(text: string, line: number): number {
  const lines = text.split("\n");
  let n = line;
  while (n <= lines.length) {
    const current = (lines[n - 1] ?? "").trimEnd();
    const isComment = n > line && current.trimStart().startsWith("#");
    if (!isComment && !current.endsWith("\\")) return n;
    n++;
  }
  return lines.length;
}

/** The step whose lines hold `line`, if any. */
export function stepAtLine<T extends { step: number; line: number }>(steps: readonly T[], text: string, line: number): T | null {
  for (const s of steps) {
    if (line >= s.line && line <= stepEndLine(text, s.line)) return s;
  }
  return null;
}

/** One mark per line a planned step covers, saying whether the next build reuses it. */
export function lineMarks(steps: readonly PlanStep[], text: string): Map<number, LineMark> {
  const marks = new Map<number, LineMark>();
  for (const s of steps) {
    const end = s.end_line ?? stepEndLine(text, s.line);
    const title =
      s.prediction === "cached"
        ? `Step ${s.step} will come from the cache.`
        : s.prediction === "built"
          ? `Step ${s.step} ${s.certain === false ? "may be" : "will be"} rebuilt. ${s.reason?.message ?? ""}`.trim()
          : s.prediction === "metadata"
            ? `Step ${s.step} changes only the image's configuration: no layer, nothing to cache.`
            : `Step ${s.step} will be skipped: the target does not need it.`;
    for (let n = s.line; n <= end; n++) marks.set(n, { step: s.step, prediction: s.prediction, certain: s.certain !== false, title, first: n === s.line });
  }
  return marks;
}

/** Steps whose verdict differs between two plans, by step number: what changed as you typed. */
export function changedPredictions(before: readonly PlanStep[], after: readonly PlanStep[]): number[] {
  const old = new Map(before.map((s) => [s.step, `${s.instruction}|${s.prediction}`]));
  return after.filter((s) => old.get(s.step) !== `${s.instruction}|${s.prediction}`).map((s) => s.step);
}

/** The stage a `COPY --from=X` copies from, or null when the instruction is not one. */
export function copyFromSource(instruction: string): string | null {
  const m = /^\s*(?:COPY|ADD)\b(?:\s+--\S+)*?\s+--from=("[^"]*"|\S+)/i.exec(instruction);
  if (!m?.[1]) return null;
  return m[1].replace(/^"|"$/g, "");
}

/** Resolves a `--from` value to a stage of the plan: by name, or by index among the stages. */
export function resolveStage(from: string, stages: readonly string[]): string | null {
  const lower = from.toLowerCase();
  const named = stages.find((s) => s.toLowerCase() === lower);
  if (named !== undefined) return named;
  if (/^\d+$/.test(from)) return stages[Number(from)] ?? null;
  return null;
}
