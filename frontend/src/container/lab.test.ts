import { describe, expect, it } from "vitest";
import { type ContainerState, isBusy, OutputBuffer, statusText } from "./lab";

describe("a container's output on the page", () => {
  it("keeps each piece once whether the snapshot or the socket brought it first", () => {
    const out = new OutputBuffer();
    out.reset("one\ntw", 6); // the snapshot: what the database kept
    expect(out.add(0, "one\n")).toBe(false); // heard live before the snapshot was read
    expect(out.add(4, "two\n")).toBe(true); // overlaps: only its new part is added
    expect(out.add(8, "three\n")).toBe(true);
    expect(out.text).toBe("one\ntwo\nthree\n");
    expect(out.end).toBe(14);
  });

  it("keeps only the latest 64 KiB", () => {
    const out = new OutputBuffer();
    out.reset("", 0);
    out.add(0, "x".repeat(70 * 1024));
    out.add(70 * 1024, "end");
    expect(out.text.length).toBe(64 * 1024);
    expect(out.text.endsWith("end")).toBe(true);
    expect(out.end).toBe(70 * 1024 + 3);
  });
});

describe("a container being committed", () => {
  const committing = { status: "committing", exit_code: 0 } as ContainerState;

  it("is busy, so the page follows it and offers nothing to do, until its worker has stored it", () => {
    expect(statusText(committing)).toBe("committing…");
    expect(isBusy(committing)).toBe(true);
    expect(isBusy({ ...committing, status: "committed" })).toBe(false);
    expect(isBusy({ ...committing, status: "exited" })).toBe(false);
  });
});
