// One store per build: it applies events in seq order exactly once, keeps each step by its
// number, and tells its listeners when something changed. The socket connector below feeds it.
import { keepOpen, socketUrl, type Connection, type PageLocation } from "./socket";
import {
  parseEvent,
  type BuildEvent,
  type BuildFinished,
  type ImageTransfer,
  type PlannedStep,
  type StepFinished,
} from "./protocol";
import type { StepState as PageState } from "./verdicts";

export type StepState = Exclude<PageState, "not_run">;

export interface StepView {
  plan: PlannedStep;
  state: StepState;
  finished: StepFinished | null;
  log: string;
  // True once the log was cut to its cap, so the view can say that lines are missing.
  logTruncated: boolean;
}

export interface StoreOptions {
  /** Most characters of log kept per step; older text is dropped first. */
  maxLogChars?: number;
  /** How log flushes are scheduled; tests pass a synchronous one. */
  schedule?: (flush: () => void) => void;
}

type Listener = (store: BuildStore) => void;

export class BuildStore {
  readonly steps = new Map<number, StepView>();
  plan: PlannedStep[] = [];
  finished: BuildFinished | null = null;
  // A base image being pulled: the latest word on each of its layers (key: layer digest, or
  // the image's name for the image as a whole).
  readonly transfers = new Map<string, ImageTransfer>();
  lastSeq = 0;
  private readonly seen = new Set<number>();
  private readonly listeners = new Set<Listener>();
  private pendingLogs = new Map<number, string>();
  private flushQueued = false;
  private readonly maxLogChars: number;
  private readonly schedule: (flush: () => void) => void;

  constructor(options: StoreOptions = {}) {
    this.maxLogChars = options.maxLogChars ?? 64 * 1024;
    this.schedule = options.schedule ?? ((flush) => queueMicrotask(flush));
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Parses and applies a raw message; returns false when it was a replayed duplicate. */
  receive(raw: unknown): boolean {
    return this.apply(parseEvent(raw));
  }

  apply(event: BuildEvent): boolean {
    // A reconnect replays from lastSeq, and the server may resend what we already hold.
    if (this.seen.has(event.seq)) return false;
    this.seen.add(event.seq);
    this.lastSeq = Math.max(this.lastSeq, event.seq);
    switch (event.type) {
      case "build.started":
        this.plan = event.steps;
        for (const plan of event.steps) {
          if (!this.steps.has(plan.step)) {
            this.steps.set(plan.step, { plan, state: "pending", finished: null, log: "", logTruncated: false });
          }
        }
        break;
      case "step.started":
        this.stepFor(event.step).state = "running";
        break;
      case "step.log":
        // Log lines come in bursts; they are joined and drawn once per flush, not once per line.
        this.pendingLogs.set(event.step, (this.pendingLogs.get(event.step) ?? "") + event.text);
        this.queueFlush();
        return true;
      case "step.finished": {
        const view = this.stepFor(event.step);
        view.state = event.status;
        view.finished = event;
        break;
      }
      case "build.finished":
        this.finished = event;
        // A step still "running" when the build ended did not finish; show it as not run.
        for (const view of this.steps.values()) if (view.state === "running") view.state = "skipped";
        break;
      case "image.pull":
      case "image.push":
        this.transfers.set(event.layer ?? event.image, event);
        break;
      default: {
        const unreachable: never = event;
        throw new Error(`unhandled event ${JSON.stringify(unreachable)}`);
      }
    }
    this.flushLogs();
    this.notify();
    return true;
  }

  private stepFor(step: number): StepView {
    let view = this.steps.get(step);
    if (!view) {
      // An event for a step the plan never named: keep it rather than lose what it says.
      view = { plan: { step, stage: "0", instruction: `step ${step}`, line: 0 }, state: "pending", finished: null, log: "", logTruncated: false };
      this.steps.set(step, view);
    }
    return view;
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.schedule(() => {
      this.flushQueued = false;
      if (this.flushLogs()) this.notify();
    });
  }

  private flushLogs(): boolean {
    if (this.pendingLogs.size === 0) return false;
    for (const [step, text] of this.pendingLogs) {
      const view = this.stepFor(step);
      let log = view.log + text;
      if (log.length > this.maxLogChars) {
        log = log.slice(log.length - this.maxLogChars);
        view.logTruncated = true;
      }
      view.log = log;
    }
    this.pendingLogs = new Map();
    return true;
  }

  private notify(): void {
    for (const listener of this.listeners) listener(this);
  }
}

export interface ConnectOptions {
  /** Page location the socket URL is derived from. */
  location: PageLocation;
  onError?: (error: unknown) => void;
  /** A share link's token, for someone the owner shared the project with. */
  token?: string;
}

export function buildSocketUrl(location: PageLocation, buildId: string, after: number, token = ""): string {
  const share = token ? `&token=${encodeURIComponent(token)}` : "";
  return socketUrl(location, `/ws/builds/${encodeURIComponent(buildId)}/?after=${after}${share}`);
}

/**
 * Keeps a socket open to the build's stream until the build finishes or stop() is called,
 * reconnecting with backoff and asking only for the events after the last one applied.
 */
export function connectBuild(buildId: string, store: BuildStore, options: ConnectOptions): Connection {
  return keepOpen({
    url: () => buildSocketUrl(options.location, buildId, store.lastSeq, options.token),
    onMessage: (data) => {
      try {
        store.receive(typeof data === "string" ? data : String(data));
      } catch (error) {
        options.onError?.(error);
      }
    },
    // A finished build's stream has nothing more to say.
    onClose: () => store.finished === null,
  });
}
