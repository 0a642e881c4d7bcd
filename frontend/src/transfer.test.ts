import { describe, expect, it } from "vitest";
import { parseEvent, ProtocolError } from "./protocol";
import { BuildStore } from "./store";
import pullBuild from "./fixtures/pull-build.jsonl?raw";

// Printed by `manage.py build --progress json` for a Dockerfile whose FROM had to be pulled.
const lines = pullBuild.split("\n").filter((line) => line.trim() !== "");

describe("image transfer events", () => {
  it("accepts a build whose FROM pulled its base, and ties the pull to the FROM step", () => {
    const events = lines.map((line) => parseEvent(line));
    const pulls = events.filter((e) => e.type === "image.pull");
    expect(pulls.length).toBeGreaterThan(3);
    expect(pulls.every((e) => e.type === "image.pull" && e.step === 1)).toBe(true);
    expect(events[events.length - 1]?.type).toBe("build.finished");
  });

  it("keeps the latest word on every layer and on the image", () => {
    const store = new BuildStore({ schedule: (flush) => flush() });
    for (const line of lines) store.receive(line);
    const image = store.transfers.get("127.0.0.1:5000/bb:1");
    expect(image?.status).toBe("done");
    const layers = [...store.transfers.values()].filter((t) => t.layer !== null);
    expect(layers).toHaveLength(1);
    expect(layers[0]?.status).toBe("done");
    expect(layers[0]?.current).toBe(layers[0]?.total);
    expect(store.finished?.status).toBe("succeeded");
  });

  it("rejects a transfer without its byte counts", () => {
    expect(() => parseEvent({ type: "image.pull", seq: 1, image: "x", layer: null, status: "done" })).toThrow(
      ProtocolError,
    );
  });
});
