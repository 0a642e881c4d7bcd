import { describe, expect, it } from "vitest";
import { changedPredictions, copyFromSource, lineMarks, resolveStage, stepAtLine, stepEndLine, type PlanStep } from "./dockerlines";

const TEXT = ["FROM busybox", "RUN echo a \\", "  # a comment inside", "  && echo b", "COPY . .", ""].join("\n");

describe("stepEndLine", () => {
  it("follows continuation lines, comments inside included", () => {
    expect(stepEndLine(TEXT, 2)).toBe(4);
    expect(stepEndLine(TEXT, 1)).toBe(1);
    expect(stepEndLine(TEXT, 5)).toBe(5);
  });
});

describe("stepAtLine", () => {
  it("finds the step whose lines hold the cursor", () => {
    const steps = [{ step: 1, line: 1 }, { step: 2, line: 2 }, { step: 3, line: 5 }];
    expect(stepAtLine(steps, TEXT, 3)?.step).toBe(2);
    expect(stepAtLine(steps, TEXT, 5)?.step).toBe(3);
    expect(stepAtLine(steps, TEXT, 6)).toBeNull();
  });
});

const plan = (prediction: PlanStep["prediction"], instruction = "COPY . ."): PlanStep[] => [
  { step: 1, stage: "0", instruction: "FROM busybox", line: 1, end_line: 1, prediction: "cached", reason: null },
  { step: 2, stage: "0", instruction, line: 5, end_line: 5, prediction, reason: prediction === "built" ? { code: "files_changed", message: "app.py was changed." } : null },
];

describe("lineMarks", () => {
  it("marks every line of a step with its verdict and the reason on hover", () => {
    const marks = lineMarks([{ ...plan("cached")[0]!, line: 2, end_line: undefined }], TEXT);
    expect([...marks.keys()]).toEqual([2, 3, 4]);
    const rebuild = lineMarks(plan("built"), TEXT).get(5);
    expect(rebuild?.prediction).toBe("built");
    expect(rebuild?.title).toContain("app.py was changed.");
  });
});

describe("an uncertain prediction", () => {
  it("says the step may be rebuilt, not that it will be", () => {
    const [, step] = plan("built");
    const mark = lineMarks([{ ...step!, certain: false }], TEXT).get(5);
    expect(mark?.certain).toBe(false);
    expect(mark?.title).toMatch(/^Step 2 may be rebuilt\./);
  });
});

describe("changedPredictions", () => {
  it("names the steps whose verdict or text changed", () => {
    expect(changedPredictions(plan("cached"), plan("built"))).toEqual([2]);
    expect(changedPredictions(plan("cached"), plan("cached"))).toEqual([]);
  });
});

describe("copyFromSource and resolveStage", () => {
  it("reads --from among other flags", () => {
    expect(copyFromSource("COPY --from=builder /src/app /app")).toBe("builder");
    expect(copyFromSource("COPY --chown=1:1 --from=0 /a /b")).toBe("0");
    expect(copyFromSource("COPY . .")).toBeNull();
    expect(copyFromSource("RUN echo --from=x")).toBeNull();
  });
  it("finds a stage by name or by index", () => {
    expect(resolveStage("Builder", ["builder", "1"])).toBe("builder");
    expect(resolveStage("0", ["builder", "1"])).toBe("builder");
    expect(resolveStage("alpine:3", ["builder", "1"])).toBeNull();
  });
});
