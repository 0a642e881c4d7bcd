// The build events as the server sends them (DESIGN.md, "Events"). Everything that arrives over
// the wire goes through parseEvent once; the rest of the frontend trusts these types.

import { parseCounts, VERDICTS } from "./verdicts";
import type * as Wire from "./events.gen";

// The shapes come from events.gen.ts, generated from the engine's schema; what parseEvent fills in
// (a field the wire may leave out) is said here, so the views need not ask.
export type StepStatus = Wire.StepFinished["status"];
export type PlannedStep = Wire.StepRef;
export type Reason = NonNullable<Wire.StepFinished["reason"]>;
export type Layer = Wire.LayerFacts;

export type BuildStarted = Pick<Wire.BuildStarted, "type" | "seq" | "steps">;
export type StepStarted = Wire.StepStarted;
export type StepLog = Wire.StepLog;

export type StepFinished = Omit<Wire.StepFinished, "keyword" | "metadata" | "base" | "error"> & {
  keyword: string;
  metadata: boolean;
  base: Wire.BaseFacts | null;
  error: Record<string, unknown> | null;
};

export type BuildFinished = Omit<Wire.BuildFinished, "status" | "cache" | "counts" | "error"> & {
  // A closing event the studio writes for a build the engine never finished says its own status.
  status: string;
  cache: Wire.HitsAndMisses | null;
  /** How many steps ended with each verdict, as the engine counted them (verdicts.tally). */
  counts: Wire.VerdictCounts | null;
  error: Record<string, unknown> | null;
};

// An image moving between a registry and the store (a FROM pulling its base, or a push):
// bytes per layer; `layer` is null for the image as a whole, `step` the FROM step in a build.
export type ImageTransfer = Pick<Wire.ImagePull, "seq" | "image" | "layer" | "current" | "total" | "status"> & {
  type: "image.pull" | "image.push";
  step: number | null;
};

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
  // The code and the sentence are checked; the details are as the engine's class for the code made them.
  return { ...r, code: str(r, "code"), message: str(r, "message") } as Reason;
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
        base: objOrNull(o, "base") as Wire.BaseFacts | null,
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
