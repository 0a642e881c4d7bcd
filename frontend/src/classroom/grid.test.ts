import { describe, expect, it } from "vitest";
import { GridState, keyword, mistakeGroups } from "./grid";
import { MessageError, parseMessage, type StudentRow } from "./messages";

function row(student: number, name: string, build: number | null, statuses: string[] = []): StudentRow {
  return {
    student,
    name,
    username: name.toLowerCase(),
    exercise: 7,
    project: 100 + student,
    build:
      build === null
        ? null
        : {
            id: build,
            number: 1,
            status: "running",
            queued_at: null,
            finished_at: null,
            cache: { hits: 0, misses: 0 },
            hit_ratio: null,
            image_size: null,
            image_layers: null,
            steps: statuses.map((status, i) => ({ step: i + 1, instruction: "RUN x", line: i + 1, status: status as "pending" })),
          },
    checks: { passed: 0, total: 0, results: [] },
    last_activity: null,
  };
}

const snapshot = (rows: StudentRow[]) =>
  parseMessage({ type: "classroom.snapshot", classroom: 1, exercise: { id: 7, title: "t" }, students: rows });

describe("GridState", () => {
  it("fills a cell of the build a row shows, and ignores a late cell of an older build", () => {
    const grid = new GridState(7);
    grid.apply(snapshot([row(1, "Ana", 50, ["cached", "pending"])]));
    expect(grid.apply(parseMessage({ type: "student.step", student: 1, exercise: 7, build: 50, step: 2, status: "built" }))).toBe(true);
    expect(grid.rows.get(1)!.build!.steps[1]!.status).toBe("built");
    expect(grid.apply(parseMessage({ type: "student.step", student: 1, exercise: 7, build: 49, step: 2, status: "failed" }))).toBe(false);
    expect(grid.rows.get(1)!.build!.steps[1]!.status).toBe("built");
  });

  it("replaces a row whole, keeps rows of other exercises out, and drops removed students", () => {
    const grid = new GridState(7);
    grid.apply(snapshot([row(2, "Ben", null), row(1, "Ana", null)]));
    expect(grid.sorted().map((r) => r.name)).toEqual(["Ana", "Ben"]);
    expect(grid.apply({ type: "student.row", row: row(1, "Ana", 51, ["cached", "built", "built"]) })).toBe(true);
    expect(grid.columns()).toBe(3);
    expect(grid.apply({ type: "student.row", row: { ...row(3, "Cat", null), exercise: 8 } })).toBe(false);
    expect(grid.rows.has(3)).toBe(false);
    grid.apply(parseMessage({ type: "student.removed", student: 2 }));
    expect(grid.sorted().map((r) => r.name)).toEqual(["Ana"]);
  });

  it("refuses a message it does not know", () => {
    expect(() => parseMessage({ type: "student.dance" })).toThrow(MessageError);
    expect(() => parseMessage({ type: "student.row", row: { student: 1 } })).toThrow(/student and name/);
  });

  it("names a cell by its instruction's keyword", () => {
    expect(keyword("  copy . /app")).toBe("COPY");
  });
});

describe("mistakeGroups", () => {
  const copyAll = { code: "studio/copy-all-before-install", source: "studio" as const, title: "copy the whole context before installing", message: "", lines: [[3, 3]] as [number, number][] };
  const check = { code: "check:1", source: "check" as const, title: "fail the check “x”", message: "", lines: [] };

  it("puts the largest group first, its students in name order, with a sentence for one or many", () => {
    const rows = [
      { ...row(1, "Cy", 1), mistakes: [copyAll] },
      { ...row(2, "ana", 2), mistakes: [copyAll, check] },
      { ...row(3, "Bo", 3), mistakes: [] },
    ];
    const groups = mistakeGroups(rows);
    expect(groups.map((g) => g.sentence)).toEqual([
      "2 students copy the whole context before installing",
      "1 student fails the check “x”",
    ]);
    expect(groups[0]!.students.map((s) => s.name)).toEqual(["ana", "Cy"]);
  });

  it("follows a row that is replaced live: a student who fixed it leaves the group", () => {
    const state = new GridState(7);
    state.apply({ type: "classroom.snapshot", classroom: 1, exercise: { id: 7, title: "t" }, students: [{ ...row(1, "Cy", 1), mistakes: [copyAll] }] });
    expect(mistakeGroups(state.sorted())).toHaveLength(1);
    state.apply({ type: "student.row", row: { ...row(1, "Cy", 2), mistakes: [] } });
    expect(mistakeGroups(state.sorted())).toEqual([]);
  });
});
