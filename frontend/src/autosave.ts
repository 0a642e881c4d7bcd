// Saves edited files a moment after the typing stops, one request per file at a time, and says
// where it stands ("Saving…", "Saved", "Not saved: why"), so a person never wonders whether the
// build will see what they typed. A build first awaits flush().

export type SaveState = { kind: "saved" } | { kind: "pending" } | { kind: "saving" } | { kind: "error"; message: string };

export type SaveFn = (path: string, text: string) => Promise<void>;

export interface AutoSaverOptions {
  delayMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export function saveStateText(state: SaveState): string {
  switch (state.kind) {
    case "saved":
      return "Saved";
    case "pending":
      return "Edited";
    case "saving":
      return "Saving…";
    case "error":
      return `Not saved: ${state.message}`;
  }
}

export class AutoSaver {
  state: SaveState = { kind: "saved" };
  private readonly pending = new Map<string, string>();
  private timer: unknown = null;
  private running: Promise<void> | null = null;
  private readonly delayMs: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly save: SaveFn, private readonly onState: (state: SaveState) => void, options: AutoSaverOptions = {}) {
    this.delayMs = options.delayMs ?? 600;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  /** Notes the file's new text; it is saved once the edits pause. */
  edit(path: string, text: string): void {
    this.pending.set(path, text);
    this.set({ kind: "pending" });
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.flush().catch(() => undefined);
    }, this.delayMs);
  }

  /** Drops what is waiting for a file that is gone (deleted or renamed). */
  forget(path: string): void {
    this.pending.delete(path);
    if (this.pending.size === 0 && this.state.kind === "pending") this.set({ kind: "saved" });
  }

  hasUnsaved(): boolean {
    return this.pending.size > 0 || this.running !== null;
  }

  /** Saves everything waiting now; rejects with the first failure, keeping that file pending. */
  async flush(): Promise<void> {
    if (this.timer !== null) {
      this.clearTimer(this.timer);
      this.timer = null;
    }
    while (this.running) await this.running.catch(() => undefined);
    if (this.pending.size === 0) return;
    const run = this.saveAll();
    this.running = run;
    try {
      await run;
    } finally {
      this.running = null;
    }
  }

  private async saveAll(): Promise<void> {
    this.set({ kind: "saving" });
    while (this.pending.size > 0) {
      const [path, text] = this.pending.entries().next().value as [string, string];
      this.pending.delete(path);
      try {
        await this.save(path, text);
      } catch (error) {
        // Unless newer text came meanwhile, this text is still the one to save.
        if (!this.pending.has(path)) this.pending.set(path, text);
        const message = error instanceof Error ? error.message : String(error);
        this.set({ kind: "error", message: `${path}: ${message}` });
        throw error;
      }
    }
    this.set({ kind: "saved" });
  }

  private set(state: SaveState): void {
    this.state = state;
    this.onState(state);
  }
}
