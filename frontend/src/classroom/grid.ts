// The teacher's grid as data: one row per student for one exercise, changed only by the socket's
// messages. Every message is idempotent, so a row that reaches the page twice (in the snapshot and
// live) changes nothing the second time.
import type { ClassroomMessage, Mistake, StepAccuracy, StudentRow } from "./messages";

export class GridState {
  exercise: number | null;
  readonly rows = new Map<number, StudentRow>();
  /** The class's prediction accuracy per step; null until the socket says. */
  predictions: StepAccuracy[] | null = null;

  constructor(exercise: number | null) {
    this.exercise = exercise;
  }

  /** Applies a message; true when the grid changed. */
  apply(message: ClassroomMessage): boolean {
    switch (message.type) {
      case "classroom.snapshot":
        this.exercise = message.exercise ? message.exercise.id : null;
        this.rows.clear();
        for (const row of message.students) this.rows.set(row.student, row);
        this.predictions = message.predictions ?? null;
        return true;
      case "class.predictions":
        if (message.exercise !== this.exercise) return false;
        this.predictions = message.predictions;
        return true;
      case "student.row":
        if (message.row.exercise !== this.exercise) return false;
        this.rows.set(message.row.student, message.row);
        return true;
      case "student.step": {
        const row = this.rows.get(message.student);
        // A cell counts only for the build its row shows; an older build's late step does not.
        if (message.exercise !== this.exercise || !row?.build || row.build.id !== message.build) return false;
        const cell = row.build.steps.find((c) => c.step === message.step);
        if (!cell || cell.status === message.status) return false;
        cell.status = message.status;
        return true;
      }
      case "student.removed":
        return this.rows.delete(message.student);
    }
  }

  /** Rows in name order. */
  sorted(): StudentRow[] {
    return [...this.rows.values()].sort((a, b) => a.name.localeCompare(b.name) || a.student - b.student);
  }

  /** How many step columns the widest row needs. */
  columns(): number {
    let most = 0;
    for (const row of this.rows.values()) most = Math.max(most, row.build?.steps.length ?? 0);
    return most;
  }
}

/** The keyword of an instruction, shown in its cell ("COPY", "RUN"). */
export function keyword(instruction: string): string {
  return (instruction.trim().split(/\s+/)[0] ?? "").toUpperCase();
}

export function compareUrl(a: StudentRow, b: StudentRow): string | null {
  if (!a.build || !b.build) return null;
  return `/compare/${a.build.id}/${b.build.id}/`;
}

export function studioUrl(row: StudentRow): string {
  return row.build ? `/studio/${row.project}/?build=${row.build.id}` : `/studio/${row.project}/`;
}

export interface MistakeGroup {
  code: string;
  source: Mistake["source"];
  title: string;
  sentence: string;
  students: { student: number; name: string }[];
}

const SOURCE_ORDER: Record<string, number> = { studio: 0, check: 1, hadolint: 2 };

/** "copy the whole context" as said of one student: "copies the whole context". */
export function singular(title: string): string {
  const [verb = "", ...rest] = title.split(" ");
  const said = verb === "copy" ? "copies" : verb === "have" ? "has" : `${verb}s`;
  return [said, ...rest].join(" ");
}

/** The class grouped by the mistakes of each student's latest build, the largest group first,
 * its students in name order (as studio/classrooms/mistakes.py groups them for the CSV). */
export function mistakeGroups(rows: StudentRow[]): MistakeGroup[] {
  const byCode = new Map<string, MistakeGroup>();
  const named = [...rows].sort((a, b) => codepoints(a.name.toLowerCase(), b.name.toLowerCase()) || a.student - b.student);
  for (const row of named) {
    for (const m of row.mistakes ?? []) {
      let group = byCode.get(m.code);
      if (!group) {
        group = { code: m.code, source: m.source, title: m.title, sentence: "", students: [] };
        byCode.set(m.code, group);
      }
      group.students.push({ student: row.student, name: row.name });
    }
  }
  const groups = [...byCode.values()].sort(
    (a, b) =>
      b.students.length - a.students.length ||
      (SOURCE_ORDER[a.source] ?? 9) - (SOURCE_ORDER[b.source] ?? 9) ||
      codepoints(a.code, b.code),
  );
  for (const g of groups) {
    const n = g.students.length;
    g.sentence = n === 1 ? `1 student ${singular(g.title)}` : `${n} students ${g.title}`;
  }
  return groups;
}

/** Strings compared as Python compares them, so the page and the CSV agree on the order. */
function codepoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
