import { describe, expect, it } from "vitest";
import { AutoSaver, saveStateText, type SaveState } from "./autosave";

function harness(save: (path: string, text: string) => Promise<void>) {
  const timers: (() => void)[] = [];
  const states: string[] = [];
  const saver = new AutoSaver(save, (s: SaveState) => states.push(saveStateText(s)), {
    setTimer: (fn) => timers.push(fn),
    clearTimer: () => timers.splice(0),
  });
  return { saver, timers, states };
}

async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 0));
  expect(ok()).toBe(true);
}

describe("AutoSaver", () => {
  it("saves only the last text once the typing pauses, and says so", async () => {
    const saved: string[] = [];
    const { saver, timers, states } = harness(async (path, text) => void saved.push(`${path}=${text}`));
    saver.edit("app.py", "a");
    saver.edit("app.py", "ab");
    expect(timers).toHaveLength(1);
    timers[0]!();
    await saver.flush();
    expect(saved).toEqual(["app.py=ab"]);
    expect(states.at(-1)).toBe("Saved");
    expect(states).toContain("Saving…");
  });

  it("says why a save failed and keeps the text to try again", async () => {
    let fail = true;
    const saved: string[] = [];
    const { saver, states } = harness(async (_p, text) => {
      if (fail) throw new Error("the file is too large");
      saved.push(text);
    });
    saver.edit("big.bin", "x");
    await expect(saver.flush()).rejects.toThrow("too large");
    expect(states.at(-1)).toBe("Not saved: big.bin: the file is too large");
    expect(saver.hasUnsaved()).toBe(true);
    fail = false;
    await saver.flush();
    expect(saved).toEqual(["x"]);
    expect(states.at(-1)).toBe("Saved");
  });

  it("waits for a save under way before a flush returns", async () => {
    let release: () => void = () => undefined;
    const order: string[] = [];
    const { saver } = harness((_p, text) => new Promise<void>((resolve) => {
      order.push(`start ${text}`);
      release = () => { order.push(`end ${text}`); resolve(); };
    }));
    saver.edit("a", "1");
    const first = saver.flush();
    saver.edit("a", "2");
    const second = saver.flush();
    await until(() => order.length === 1);
    release();
    await until(() => order.length === 3);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(["start 1", "end 1", "start 2", "end 2"]);
  });

  it("forgets a deleted file's pending text", async () => {
    const saved: string[] = [];
    const { saver, states } = harness(async (path) => void saved.push(path));
    saver.edit("gone.txt", "x");
    saver.forget("gone.txt");
    await saver.flush();
    expect(saved).toEqual([]);
    expect(states.at(-1)).toBe("Saved");
  });
});
