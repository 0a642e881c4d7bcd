// The teacher's grid as data: one row per student for one exercise, changed only by the socket's
// messages. Every message is idempotent, so a row that reaches the page twice (in the snapshot and
// live) changes nothing the second time.
import type { ClassroomMessage, StudentRow } from "./messages";

export class GridState {
  exercise: number | null;
  readonly rows = new Map<number, StudentRow>();

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
