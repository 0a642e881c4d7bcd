// The build events as the server sends them (DESIGN.md, "Events"). Everything that arrives over
// the wire goes through parseEvent once; the rest of the frontend trusts these types.

import { parseCounts, VERDICTS, type Counts, type Verdict } from "./verdicts";

export type StepStatus = Verdict;

export interface PlannedStep {
  step: number;
  stage: string;
  instruction: string;
  line: number;
}

export interface Reason {
  code: string;
  message: string;
  // Details differ by code (files lists, old/new instruction, cause_step…); kept as sent.
  [detail: string]: unknown;
}

export interface Layer {
  digest: string;
  size: number;
  files: { added: number; modified: number; deleted: number };
}

export interface BuildStarted {
  type: "build.started";
  seq: number;
  steps: PlannedStep[];
}

export interface StepStarted {
  type: "step.started";
  seq: number;
  step: number;
}

export interface StepLog {
  type: "step.log";
  seq: number;
  step: number;
  stream: string;
  text: string;
}

export interface StepFinished {
  type: "step.finished";
  seq: number;
  step: number;
  stage: string;
  keyword: string;
  instruction: string;
  line: number;
  status: StepStatus;
  cached: boolean;
  cache_key: string | null;
  reason: Reason | null;
  layer: Layer | null;
  metadata: boolean;
  base: Record<string, unknown> | null;
  error: Record<string, unknown> | null;
  duration_ms: number;
}

export interface BuildFinished {
  type: "build.finished";
  seq: number;
  status: string;
  image: { digest: string; size: number; layers: number; tag: string | null } | null;
  cache: { hits: number; misses: number } | null;
  /** How many steps ended with each verdict, as the engine counted them (verdicts.tally). */
  counts: Counts | null;
  duration_ms: number;
  error: Record<string, unknown> | null;
}

// An image moving between a registry and the store (a FROM pulling its base, or a push):
// bytes per layer; `layer` is null for the image as a whole, `step` the FROM step in a build.
export interface ImageTransfer {
  type: "image.pull" | "image.push";
  seq: number;
  step: number | null;
  image: string;
  layer: string | null;
  current: number;
  total: number;
  status: string;
}

export type BuildEvent = BuildStarted | StepStarted | StepLog | StepFinished | BuildFinished | ImageTransfer;

export class ProtocolError extends Error {}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function num(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ProtocolError(`${key} must be a number`);
  return v;
}

function str(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new ProtocolError(`${key} must be a string`);
  return v;
}

function objOrNull(o: Obj, key: string): Obj | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (!isObj(v)) throw new ProtocolError(`${key} must be an object or null`);
  return v;
}

const STATUSES: readonly StepStatus[] = VERDICTS;

function parseReason(o: Obj): Reason | null {
  const r = objOrNull(o, "reason");
  if (r === null) return null;
  return { ...r, code: str(r, "code"), message: str(r, "message") };
}

function parseLayer(o: Obj): Layer | null {
  const l = objOrNull(o, "layer");
  if (l === null) return null;
  const files = objOrNull(l, "files") ?? {};
  const count = (k: string): number => (typeof files[k] === "number" ? (files[k] as number) : 0);
  return {
    digest: str(l, "digest"),
    size: num(l, "size"),
    files: { added: count("added"), modified: count("modified"), deleted: count("deleted") },
  };
}

/** Validates one event from the wire; throws ProtocolError on anything the frontend can't draw. */
export function parseEvent(raw: unknown): BuildEvent {
  const o = typeof raw === "string" ? (JSON.parse(raw) as unknown) : raw;
  if (!isObj(o)) throw new ProtocolError("event must be an object");
  const type = str(o, "type");
  const seq = num(o, "seq");
  switch (type) {
    case "build.started": {
      const steps = o["steps"];
      if (!Array.isArray(steps)) throw new ProtocolError("steps must be a list");
      return {
        type,
        seq,
        steps: steps.map((s: unknown) => {
          if (!isObj(s)) throw new ProtocolError("a planned step must be an object");
          return { step: num(s, "step"), stage: String(s["stage"] ?? "0"), instruction: str(s, "instruction"), line: num(s, "line") };
        }),
      };
    }
    case "step.started":
      return { type, seq, step: num(o, "step") };
    case "step.log":
      return { type, seq, step: num(o, "step"), stream: str(o, "stream"), text: str(o, "text") };
    case "step.finished": {
      const status = str(o, "status") as StepStatus;
      if (!STATUSES.includes(status)) throw new ProtocolError(`unknown status ${status}`);
      return {
        type,
        seq,
        step: num(o, "step"),
        stage: String(o["stage"] ?? "0"),
        keyword: str(o, "keyword"),
        instruction: str(o, "instruction"),
        line: num(o, "line"),
        status,
        cached: o["cached"] === true,
        cache_key: typeof o["cache_key"] === "string" ? o["cache_key"] : null,
        reason: parseReason(o),
        layer: parseLayer(o),
        metadata: o["metadata"] === true,
        base: objOrNull(o, "base"),
        error: objOrNull(o, "error"),
        duration_ms: typeof o["duration_ms"] === "number" ? o["duration_ms"] : 0,
      };
    }
    case "build.finished": {
      const image = objOrNull(o, "image");
      const cache = objOrNull(o, "cache");
      return {
        type,
        seq,
        status: str(o, "status"),
        image: image && {
          digest: str(image, "digest"),
          size: num(image, "size"),
          layers: num(image, "layers"),
          tag: typeof image["tag"] === "string" ? image["tag"] : null,
        },
        cache: cache && { hits: num(cache, "hits"), misses: num(cache, "misses") },
        counts: parseCounts(o["counts"]),
        duration_ms: typeof o["duration_ms"] === "number" ? o["duration_ms"] : 0,
        error: objOrNull(o, "error"),
      };
    }
    case "image.pull":
    case "image.push":
      return {
        type,
        seq,
        step: typeof o["step"] === "number" ? o["step"] : null,
        image: str(o, "image"),
        layer: typeof o["layer"] === "string" ? o["layer"] : null,
        current: num(o, "current"),
        total: num(o, "total"),
        status: str(o, "status"),
      };
    default:
      throw new ProtocolError(`unknown event type ${type}`);
  }
}
