// What the classroom's socket (ws/classrooms/<id>/) sends, checked once here at the boundary.
import type { Counts, StepState } from "../verdicts";
import type { CacheScope } from "../compare/types";

/** A grid cell: a step's status in the student's latest build, or where that build is at. */
export type CellStatus = Exclude<StepState, "not_run">;
export type BuildStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type CheckStatus = "pass" | "fail" | "not_yet";

export interface Cell {
  step: number;
  instruction: string;
  line: number | null;
  status: CellStatus;
}

export interface BuildBrief {
  id: number;
  number: number;
  status: BuildStatus;
  queued_at: string | null;
  finished_at: string | null;
  cache: { hits: number; misses: number };
  counts?: Counts;
  cache_scope?: CacheScope;
  hit_ratio: number | null;
  image_size: number | null;
  image_layers: number | null;
  steps: Cell[];
}

export type CheckState = "not_yet" | "failed" | "passed" | "partly" | "checking";

/** A mistake the student's latest Dockerfile makes (a studio hint, a hadolint finding) or a
 * check it fails; `lines` the places at fault, [first, last]. */
export interface Mistake {
  code: string;
  source: "studio" | "hadolint" | "check";
  title: string;
  message: string;
  lines: [number, number][];
}

export interface StepAccuracy {
  step: number;
  instruction: string;
  right: number;
  total: number;
}

export interface CheckResult {
  check: string;
  status: CheckStatus;
  message: string;
  build: number | null;
}

export interface StudentRow {
  student: number;
  name: string;
  username: string;
  exercise: number;
  project: number;
  build: BuildBrief | null;
  /** state: not_yet (never built or checked) is not failed; the cell says so. */
  /** checking: the build number whose checks' own builds are running (state "checking"). */
  checks: { passed: number; total: number; results: CheckResult[]; state?: CheckState; checking?: number | null };
  mistakes?: Mistake[];
  last_activity: string | null;
}

export interface Snapshot {
  type: "classroom.snapshot";
  classroom: number;
  exercise: { id: number; title: string } | null;
  students: StudentRow[];
  predictions?: StepAccuracy[];
}

export interface PredictionsMessage {
  type: "class.predictions";
  exercise: number;
  predictions: StepAccuracy[];
}

export interface RowMessage {
  type: "student.row";
  row: StudentRow;
}

export interface StepMessage {
  type: "student.step";
  student: number;
  exercise: number;
  build: number;
  step: number;
  status: CellStatus;
}

export interface RemovedMessage {
  type: "student.removed";
  student: number;
}

export type ClassroomMessage = Snapshot | RowMessage | StepMessage | RemovedMessage | PredictionsMessage;

export class MessageError extends Error {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function need(ok: boolean, what: string): void {
  if (!ok) throw new MessageError(`classroom message: ${what}`);
}

function checkRow(row: unknown): StudentRow {
  need(isObject(row), "a row must be an object");
  const r = row as Record<string, unknown>;
  need(typeof r.student === "number" && typeof r.name === "string", "a row needs student and name");
  need(typeof r.project === "number" && typeof r.exercise === "number", "a row needs project and exercise");
  need(r.build === null || (isObject(r.build) && Array.isArray(r.build.steps)), "a row's build needs steps");
  need(isObject(r.checks) && Array.isArray(r.checks.results), "a row needs its checks");
  need(r.mistakes === undefined || Array.isArray(r.mistakes), "a row's mistakes must be a list");
  return row as StudentRow;
}

export function parseMessage(raw: unknown): ClassroomMessage {
  need(isObject(raw), "not an object");
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case "classroom.snapshot":
      need(Array.isArray(m.students), "a snapshot needs students");
      (m.students as unknown[]).forEach(checkRow);
      return m as unknown as Snapshot;
    case "student.row":
      checkRow(m.row);
      return m as unknown as RowMessage;
    case "student.step":
      need(
        typeof m.student === "number" && typeof m.build === "number" && typeof m.step === "number",
        "a step needs student, build and step",
      );
      return m as unknown as StepMessage;
    case "student.removed":
      need(typeof m.student === "number", "removed needs a student");
      return m as unknown as RemovedMessage;
    case "class.predictions":
      need(typeof m.exercise === "number" && Array.isArray(m.predictions), "predictions need exercise and a list");
      return m as unknown as PredictionsMessage;
    default:
      throw new MessageError(`classroom message: unknown type ${String(m.type)}`);
  }
}
