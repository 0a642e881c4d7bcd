import { describe, expect, it } from "vitest";
import { pullOf } from "./pull";
import { BuildStore } from "./store";
import pullBuild from "./fixtures/pull-build.jsonl?raw";

// Printed by `manage.py build --progress json` for a Dockerfile whose FROM had to be pulled.
const lines = pullBuild.split("\n").filter((line) => line.trim() !== "");

function storeAfter(count: number): BuildStore {
  const store = new BuildStore({ schedule: (flush) => flush() });
  for (const line of lines.slice(0, count)) store.receive(line);
  return store;
}

describe("the pull of a FROM", () => {
  it("is done once the image is, with every byte of the one layer fetched", () => {
    const pull = pullOf(storeAfter(lines.length).transfers.values(), 1);
    expect(pull).toEqual({ image: "127.0.0.1:5000/bb:1", layers: 1, current: 2126848, total: 2126848, done: true });
  });

  it("counts the bytes so far while the layer downloads", () => {
    const seq = lines.findIndex((line) => line.includes('"current":1048576'));
    const pull = pullOf(storeAfter(seq + 1).transfers.values(), 1);
    expect(pull?.done).toBe(false);
    expect([pull?.current, pull?.total]).toEqual([1048576, 2126848]);
  });

  it("is null for a step that pulled nothing", () => {
    expect(pullOf(storeAfter(lines.length).transfers.values(), 2)).toBeNull();
  });
});
